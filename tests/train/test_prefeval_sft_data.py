"""PrefEval run -> SFT data: answers judged preference-following, method text removed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from persona_lab.core.errors import DataError
from persona_lab.train import data

pytest.importorskip("persona_lab.eval.prefeval.runner")

from persona_lab.core.messages import Message  # noqa: E402
from persona_lab.simulators.prefeval.context import FinalUserMessage, prompt_sha  # noqa: E402
from persona_lab.simulators.prefeval.data import filler_from_pairs  # noqa: E402

REMINDER = "Please stay consistent with the preferences I told you about earlier."


def _record(filler: Any, filler_file: Path, i: int, *, method: str = "reminder", followed: bool | None = True,
            task: str = "generation", status: str = "ok", programmatic: bool | None = None) -> dict[str, Any]:
    block = [{"role": "user", "content": f"I am vegan (item {i})."}, {"role": "assistant", "content": "Noted."}]
    final = FinalUserMessage(f"What should I cook tonight? ({i})", "Answer in at most 300 words.",
                             suffix=REMINDER if method == "reminder" else "")
    msgs = [Message("system", "You are helpful."), *(Message(m["role"], m["content"]) for m in block),
            *filler.messages(2), Message("user", final.text)]
    judges = {"llm": {"followed": followed}}
    if programmatic is not None:
        judges["programmatic"] = {"followed": programmatic}
    return {
        "key": f"food/{i}|explicit|2|{method}|{task}", "item_id": f"food/{i}", "topic": "food", "row": i,
        "form": "explicit", "turns": 2, "method": method, "task": task, "status": status,
        "context": {"system": "You are helpful.", "preference_block": block, "filler_file": str(filler_file),
                    "filler_sha": filler.sha, "filler_pairs": 2},
        "final_user": final.to_dict(), "prompt_sha": prompt_sha(msgs),
        "response": f"Try a chickpea curry ({i}).", "steps": [], "judge": {"followed": followed},
        "judges": judges, "followed": followed,
    }


@pytest.fixture
def prefeval_run(tmp_path: Path) -> tuple[Path, Any, Path]:
    pairs = [("hi", "hello"), ("weather?", "sunny"), ("a joke?", "no")]
    filler = filler_from_pairs(pairs, name="test")
    filler_file = tmp_path / "filler.json"
    filler_file.write_text(json.dumps([[{"role": "user", "content": u}, {"role": "assistant", "content": a}]
                                       for u, a in pairs]))
    run = tmp_path / "prefeval"
    run.mkdir()
    return run, filler, filler_file


def _write(run: Path, records: list[dict[str, Any]]) -> None:
    (run / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_followed_answers_without_method_text(prefeval_run: tuple[Path, Any, Path]) -> None:
    run, filler, ffile = prefeval_run
    records = [
        _record(filler, ffile, 0),
        _record(filler, ffile, 1, followed=False),
        _record(filler, ffile, 2, followed=None),  # unjudged: not evidence of following
        _record(filler, ffile, 3, method="zero-shot", programmatic=False),
        _record(filler, ffile, 4, task="classification"),
        _record(filler, ffile, 5, status="error"),
        {**_record(filler, ffile, 1, followed=False), "followed": True,
         "judges": {"llm": {"followed": True}}},  # a rerun of key 1: the last record wins
        {**_record(filler, ffile, 6), "form": "question-only", "key": "food/6|question-only|0|reminder|generation"},
    ]  # the question-only control (no preference shown) is never training data
    _write(run, records)
    ds = data.sft_from_prefeval_run(run)
    assert sorted(ds["item_id"]) == ["food/0", "food/1", "food/3"]
    row = ds[ds["item_id"].index("food/0")]
    assert row["prompt"][0] == {"role": "system", "content": "You are helpful."}
    assert row["prompt"][1]["content"] == "I am vegan (item 0)."
    assert len(row["prompt"]) == 1 + 2 + 4 + 1  # system, preference block, 2 filler pairs, question
    last = row["prompt"][-1]["content"]
    assert last == "What should I cook tonight? (0) Answer in at most 300 words." and REMINDER not in last
    assert row["completion"] == [{"role": "assistant", "content": "Try a chickpea curry (0)."}]
    assert data.check_dataset(ds, kind="sft", source="x") == "prompt_completion/conversational"

    assert sorted(data.sft_from_prefeval_run(run, methods=["reminder"])["item_id"]) == ["food/0", "food/1"]
    assert sorted(data.sft_from_prefeval_run(run, judge="all")["item_id"]) == ["food/0", "food/1"]
    kept = data.sft_from_prefeval_run(run, keep_method_text=True)
    assert REMINDER in kept[kept["item_id"].index("food/0")]["prompt"][-1]["content"]
    assert len(data.load_training_data(run, kind="sft")) == 3
    with pytest.raises(DataError, match="SFT data, not preference pairs"):
        data.load_training_data(run, kind="preference")


def test_malformed_prefeval_records(prefeval_run: tuple[Path, Any, Path]) -> None:
    run, filler, ffile = prefeval_run
    _write(run, [_record(filler, ffile, 0), {**_record(filler, ffile, 1), "response": ""}])
    with pytest.raises(DataError) as err:
        data.sft_from_prefeval_run(run)
    assert (err.value.row, err.value.field) == (2, "response")

    _write(run, [{**_record(filler, ffile, 0), "prompt_sha": "0" * 16}])
    with pytest.raises(DataError, match="prompt_sha") as err:
        data.sft_from_prefeval_run(run)
    assert err.value.row == 1

    _write(run, [{k: v for k, v in _record(filler, ffile, 0).items() if k != "key"}])
    with pytest.raises(DataError) as err:
        data.sft_from_prefeval_run(run)
    assert err.value.field == "key"


def test_paper_recipe(prefeval_run: tuple[Path, Any, Path], tmp_path: Path) -> None:
    run, filler, _ = prefeval_run
    convs = [{"conversation": [{"role": "user", "content": f"c{c} u{k}"} if k % 2 == 0 else
                               {"role": "assistant", "content": f"c{c} a{k}"} for k in range(4)]} for c in range(6)]
    ffile = tmp_path / "filtered_inter_turns.json"
    ffile.write_text(json.dumps(convs))
    topics = [f"topic{t}" for t in range(5)]
    records = []
    for t, topic in enumerate(topics):
        for i in range(2):
            rec = _record(filler, ffile, 10 * t + i, followed=(i == 0))
            rec.update({"topic": topic, "turns": 0, "key": f"{topic}/{i}|explicit|0|reminder|generation",
                        "question": f"Question {topic}/{i}?", "item_id": f"{topic}/{i}"})
            rec["context"] = {**rec["context"], "filler_pairs": 0}
            records.append(rec)
    records.append({**_record(filler, ffile, 99), "topic": "topic0", "key": "topic0/9|explicit|2|reminder|generation"})
    records.append({**_record(filler, ffile, 98, method="zero-shot"), "topic": "topic0", "turns": 0,
                    "key": "topic0/8|explicit|0|zero-shot|generation"})
    _write(run, records)

    train = data.paper_sft_from_prefeval_run(run, filler_pairs=3)
    held = data.paper_sft_from_prefeval_run(run, filler_pairs=3, split="eval")
    assert len(train) + len(held) == 10  # every reminder answer at 0 filler, followed or not; nothing else
    assert set(held["topic"]) and not set(held["topic"]) & set(train["topic"])  # evaluation topics never trained on
    assert len(set(held["topic"])) == 1  # 20% of 5 topics
    row = train[0]
    roles = [m["role"] for m in row["prompt"]]
    assert roles == ["system", "user", "assistant", *["user", "assistant"] * 3, "user"]
    assert row["prompt"][3]["content"] == "c2 u0"  # filler from the last 4 of 6 conversations
    assert row["prompt"][-1]["content"] == f"Question {row['item_id']}?"  # the bare question
    # `train sft --prefeval-recipe paper` goes through load_training_data: 10 pairs by default, and
    # the last 4 conversations here hold only 8
    with pytest.raises(DataError, match="hold 8 turn pairs; 10 were asked for"):
        data.load_training_data(run, kind="sft", prefeval_recipe="paper")
    from persona_lab.core.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown PrefEval SFT recipe"):
        data.load_training_data(run, kind="sft", prefeval_recipe="papr")
