"""The hf batcher serves its known callers (live threads that called recently, as a run's episode
threads) as soon as each has a request in, without the quiet gap; a new caller is waited for."""

from __future__ import annotations

import threading

from persona_lab.models import ChatRequest
from persona_lab.models.base import Completion, Usage
from persona_lab.models.hf import DynamicBatcher


def _echo(requests: list[ChatRequest]) -> list[Completion]:
    return [Completion(r.messages[-1].content.upper(), Usage(1, 1, 0.0), "stop") for r in requests]


def _rounds(batcher: DynamicBatcher, n_threads: int, rounds: int) -> list[list[str]]:
    """``n_threads`` long-lived callers; each round they are released together and each sends one request."""
    start, done = threading.Barrier(n_threads + 1), threading.Barrier(n_threads + 1)
    answers: list[list[str]] = []
    got = [""] * n_threads

    def work(i: int) -> None:
        for r in range(rounds):
            start.wait()
            got[i] = batcher([ChatRequest.of(f"t{i} r{r}")])[0].text
            done.wait()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for _ in range(rounds):
        start.wait()
        done.wait()
        answers.append(list(got))
    for t in threads:
        t.join()
    return answers


def test_known_callers_are_served_without_the_quiet_gap_and_never_split() -> None:
    batches: list[int] = []

    def run(requests: list[ChatRequest]) -> list[Completion]:
        batches.append(len(requests))
        return _echo(requests)

    # a quiet gap far longer than the callers' spread: every batch that waited for it would be
    # counted as not early; none is split either way
    batcher = DynamicBatcher(run, lambda r: 0, max_batch_size=16, wait_s=0.3)
    answers = _rounds(batcher, 6, 4)
    assert answers == [[f"T{i} R{r}" for i in range(6)] for r in range(4)]
    assert batches == [6, 6, 6, 6], "one batch per round"
    assert batcher.early == 3, "the first round meets new callers (quiet gap); the next three do not wait"
    batcher.close()


def test_a_caller_that_is_gone_is_not_waited_for() -> None:
    batcher = DynamicBatcher(_echo, lambda r: 0, wait_s=0.05)
    _rounds(batcher, 3, 1)  # three callers, then their threads end
    early = batcher.early
    assert batcher([ChatRequest.of("alone")])[0].text == "ALONE"
    assert batcher.early == early, "dead callers are not known: the new caller waits for the quiet gap"
    batcher.close()
