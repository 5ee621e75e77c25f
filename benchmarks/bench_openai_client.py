"""The ``openai`` backend vs the raw clients a user would write, against an instant local server.

    python benchmarks/bench_openai_client.py [--concurrency 1 8 32 256] [--requests 600] [--reps 3]

The server (a minimal asyncio HTTP/1.1 keep-alive server answering every POST with one canned chat
completion) runs in its own process, so the client process's CPU time is the client's alone. At each
concurrency c, interleaved A/B over ``--reps`` rounds:

- ``persona-lab threads``: c caller threads, each calling ``OpenAIChatModel.generate([one request])``
  in a loop (how the runner's episode threads call a backend);
- ``persona-lab batch``: one ``generate`` call with every request (the backend's pool keeps c in flight);
- ``persona-lab cached``: the threads case through the response cache (every request a miss, as in a
  first run; ``open_chat_model`` with a fresh cache folder per trial, opened by one request before
  the clock starts);
- ``raw http.client``: c threads, each with its own keep-alive ``http.client.HTTPConnection``,
  posting the same JSON body and parsing the reply;
- ``raw aiohttp``: c asyncio tasks on one ``aiohttp.ClientSession`` (when aiohttp is installed).

Printed: requests/s and client CPU µs/request (medians over reps), and the median over reps of the
paired ratio to each raw client (this impl's req/s over the raw client's in the same rep). The order
of the impls rotates each rep.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

REPLY = json.dumps({
    "id": "x", "object": "chat.completion", "created": 0, "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok, noted."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
}).encode()
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(REPLY)).encode() + b"\r\n\r\n" + REPLY)


# ------------------------------------------------------------------------------------------------ server

class _Instant(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].lower()
            i = head.find(b"content-length:")
            n = int(head[i + 15:].split(b"\r\n", 1)[0]) if i >= 0 else 0
            if len(self.buf) < end + 4 + n:
                return
            self.buf = self.buf[end + 4 + n:]
            self.t.write(RESPONSE)  # type: ignore[attr-defined]


def serve() -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Instant, "127.0.0.1", 0, backlog=1024)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    asyncio.run(run())


# ------------------------------------------------------------------------------------------------ clients

def body(i: int) -> bytes:
    return json.dumps({"model": "m", "messages": [{"role": "user", "content": f"request number {i}, say ok"}],
                       "max_tokens": 16, "temperature": 0.0, "top_p": 1.0, "stream": False}).encode()


def in_threads(c: int, n: int, work: Callable[[int, int], None]) -> None:
    per = [n // c + (1 if k < n % c else 0) for k in range(c)]
    threads = [threading.Thread(target=work, args=(k, per[k])) for k in range(c)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def raw_http(port: int, c: int, n: int) -> None:
    def work(k: int, m: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        for i in range(m):
            conn.request("POST", "/v1/chat/completions", body=body(k * 100000 + i),
                         headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            assert json.loads(r.read())["choices"][0]["message"]["content"]
        conn.close()

    in_threads(c, n, work)


def raw_aiohttp(port: int, c: int, n: int) -> None:
    import aiohttp

    async def run() -> None:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        connector = aiohttp.TCPConnector(limit=c)
        async with aiohttp.ClientSession(connector=connector) as session:
            queue = list(range(n))

            async def worker() -> None:
                while queue:
                    i = queue.pop()
                    async with session.post(url, data=body(i), headers={"Content-Type": "application/json"}) as r:
                        assert json.loads(await r.read())["choices"][0]["message"]["content"]

            await asyncio.gather(*(worker() for _ in range(c)))

    asyncio.run(run())


def ours_threads(model: object, c: int, n: int) -> None:
    from persona_lab.models import ChatRequest

    def work(k: int, m: int) -> None:
        for i in range(m):
            out = model.generate([ChatRequest.of(f"request number {k * 100000 + i}, say ok", max_new_tokens=16)])  # type: ignore[attr-defined]
            assert out[0].text

    in_threads(c, n, work)


def ours_batch(model: object, c: int, n: int) -> None:
    from persona_lab.models import ChatRequest

    out = model.generate([ChatRequest.of(f"request number {i}, say ok", max_new_tokens=16) for i in range(n)])  # type: ignore[attr-defined]
    assert len(out) == n


def timed(fn: Callable[[], None], n: int) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return n / wall, cpu / n * 1e6


def bench_one(url: str, port: int, c: int, n: int, reps: int, skip: list[str], have_aiohttp: bool) -> None:
    from persona_lab.models import ChatRequest, open_chat_model
    from persona_lab.models.openai_compat import OpenAIChatModel

    model = OpenAIChatModel("m", url, max_concurrency=c)
    tmp = tempfile.mkdtemp(prefix="persona-lab-bench-openai-")

    def cached() -> Callable[[], None]:
        # a fresh, empty cache per trial (every request a miss), opened before the clock starts as
        # in a run, whose first request has opened it; the open itself is bench_cache_open.py's
        chat = open_chat_model(f"openai:m@{url}?max_concurrency={c}", cache_dir=tempfile.mkdtemp(dir=tmp))
        chat.generate([ChatRequest.of("warm-up", max_new_tokens=16)])  # type: ignore[attr-defined]
        return lambda: ours_threads(chat, c, n)

    impls: dict[str, Callable[[], Callable[[], None]]] = {
        "raw http.client": lambda: lambda: raw_http(port, c, n),
        "persona-lab threads": lambda: lambda: ours_threads(model, c, n),
        "persona-lab batch": lambda: lambda: ours_batch(model, c, n),
        "persona-lab cached": cached,
    }
    if have_aiohttp:
        impls["raw aiohttp"] = lambda: lambda: raw_aiohttp(port, c, n)
    for name in skip:
        impls.pop(name, None)
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in impls}
    for rep in range(reps):
        # interleaved, and the order rotates each rep so no impl always runs after the same one
        names = list(impls)
        names = names[rep % len(names):] + names[:rep % len(names)]
        for name in names:
            results[name].append(timed(impls[name](), n))
    raws = [k for k in ("raw http.client", "raw aiohttp") if k in results]
    for name, v in results.items():
        rps = statistics.median(r for r, _ in v)
        us = statistics.median(u for _, u in v)
        # paired ratios: this impl's req/s over the raw client's in the same rep, median over reps
        ratios = "".join(f"{statistics.median(a[0] / b[0] for a, b in zip(v, results[raw])):>15.2f}" for raw in raws)
        print(f"{c:>4} {name:<20}{rps:>10.0f}{us:>12.0f}{ratios}", flush=True)
    model.close()
    shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve()
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 256])
    ap.add_argument("--requests", type=int, default=600, help="requests per trial (x2 at c >= 32)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--skip", nargs="*", default=[], help="impls to leave out, e.g. 'persona-lab cached'")
    args = ap.parse_args()

    proc = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())  # type: ignore[union-attr]
        url = f"http://127.0.0.1:{port}/v1"
        try:
            import aiohttp  # noqa: F401
            have_aiohttp = True
        except ImportError:
            have_aiohttp = False
        print(f"server pid {proc.pid} on {url}; aiohttp {'yes' if have_aiohttp else 'not installed'}")
        print(f"load average at start {os.getloadavg()[0]:.1f}")
        print(f"{'c':>4} {'impl':<20}{'req/s':>10}{'CPU us/req':>12}{'/ http.client':>15}"
              + (f"{'/ aiohttp':>15}" if have_aiohttp else ""))
        for c in args.concurrency:
            bench_one(url, port, c, args.requests * (2 if c >= 32 else 1), args.reps, args.skip, have_aiohttp)
    finally:
        proc.terminate()
        proc.wait()
    print(f"(cpus: {os.cpu_count()}; load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
