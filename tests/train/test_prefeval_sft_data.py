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
