"""Dataset builders: edit-world runs -> preference pairs / SFT targets, TRL-format JSONL validated
with file/line/field errors, export and reload."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from trl.data_utils import apply_chat_template, is_conversational

from persona_lab.core.errors import DataError
from persona_lab.train import data


def test_edit_run_to_preference_pairs(make_edit_run: Any, tiny: tuple[Any, Any]) -> None:
    run = make_edit_run(n_edited=5, n_accepted=3, n_same=2)
    pairs = data.preference_pairs_from_edit_run(run)
    assert len(pairs) == 5  # accepted rounds and unchanged drafts carry no preference
    row = pairs[0]
    assert row["prompt"][0]["role"] == "system" and row["prompt"][-1]["content"] == "Write an email about item 0."
    assert row["chosen"] == [{"role": "assistant", "content": "Hi team: item 0."}]
    assert row["rejected"][0]["content"].startswith("Dear team")
    assert row["user_id"] == "u0" and row["doc_id"] == "doc-00" and row["cost"] == 7.0
    assert data.check_dataset(pairs, kind="preference", source="pairs") == "explicit_prompt/conversational"
    # TRL reads it as conversational and renders it with the chat template
    assert is_conversational(row)
    _, tok = tiny
    rendered = apply_chat_template({k: row[k] for k in ("prompt", "chosen", "rejected")}, tok)
    assert rendered["prompt"].endswith("<|im_start|>assistant\n")
    assert rendered["chosen"].startswith("Hi team: item 0.")
    assert data.trl_columns(pairs, kind="preference").column_names == ["prompt", "chosen", "rejected"]


def test_edit_run_to_sft_targets(make_edit_run: Any) -> None:
    run = make_edit_run(n_edited=4, n_accepted=3, n_same=1)
    every = data.sft_from_edit_run(run)
    assert len(every) == 8  # the text the user ended with, every round
    accepted = [r for r in every if r["cost"] == 0.0]
    assert accepted and all(r["completion"][0]["content"].startswith("Dear team") for r in accepted)
    assert len(data.sft_from_edit_run(run, edited_only=True)) == 4
    assert data.check_dataset(every, kind="sft", source="sft") == "prompt_completion/conversational"
    assert len(data.load_training_data(run, kind="sft")) == 8
    assert len(data.load_training_data(run / "transitions.jsonl", kind="preference")) == 4


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        ('{"action": "x", "info": {"edited_text": "y"}}', "prompt", "missing"),
        ('{"prompt": "hi", "action": "x", "info": {"edited_text": "y"}}', "prompt", "list of messages"),
        ('{"prompt": [{"role": "bot", "content": "hi"}], "action": "x", "info": {"edited_text": "y"}}',
         "prompt[0].role", "unknown role 'bot'"),
        ('{"prompt": [{"role": "user", "content": "hi"}], "action": 3, "info": {"edited_text": "y"}}',
         "action", "string"),
        ('{"prompt": [{"role": "user", "content": "hi"}], "action": "x", "info": {}}',
         "info.edited_text", "string"),
        ('{"prompt": [{"role": "user", "content": "hi"}], "action": "x", "info": {"edited_text": "y", "accepted": "no"}}',
         "info.accepted", "true/false"),
    ],
)
def test_malformed_transitions_name_file_line_field(make_edit_run: Any, line: str, field: str, message: str) -> None:
    run = make_edit_run(n_edited=2, n_accepted=0, extra_lines=(line,))
    with pytest.raises(DataError, match=message) as err:
        data.preference_pairs_from_edit_run(run)
    assert err.value.path == str(run / "transitions.jsonl")
    assert err.value.row == 3 and err.value.field == field
    assert f"row 3, field '{field}'" in str(err.value)


def test_bad_json_line_and_missing_run(make_edit_run: Any, tmp_path: Path) -> None:
    run = make_edit_run(n_edited=1, n_accepted=0, extra_lines=("{not json",))
    with pytest.raises(DataError, match="invalid JSON") as err:
        data.sft_from_edit_run(run)
    assert err.value.row == 2
    with pytest.raises(DataError, match="no transitions.jsonl"):
        data.preference_pairs_from_edit_run(tmp_path)
    with pytest.raises(DataError, match="not found"):
        data.load_training_data(tmp_path / "nope", kind="sft")


def _write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


CONV_PREF = {"prompt": [{"role": "user", "content": "q"}], "chosen": [{"role": "assistant", "content": "a"}],
             "rejected": [{"role": "assistant", "content": "b"}]}


@pytest.mark.parametrize(
    ("kind", "row", "fmt"),
    [
        ("preference", CONV_PREF, "explicit_prompt/conversational"),
        ("preference", {"prompt": "q", "chosen": "a", "rejected": "b"}, "explicit_prompt/standard"),
        ("preference", {"chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
                        "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "b"}]},
         "implicit_prompt/conversational"),
        ("sft", {"prompt": [{"role": "user", "content": "q"}], "completion": [{"role": "assistant", "content": "a"}]},
         "prompt_completion/conversational"),
        ("sft", {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
         "messages/conversational"),
        ("sft", {"text": "plain text"}, "text/standard"),
    ],
)
def test_jsonl_in_trl_formats_is_accepted(kind: str, row: dict, fmt: str, tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "d.jsonl", [row, row])
    ds = data.load_jsonl_dataset(path, kind=kind)
    assert len(ds) == 2 and data.check_dataset(ds, kind=kind, source="x") == fmt
    assert is_conversational(ds[0]) == fmt.endswith("conversational")


@pytest.mark.parametrize(
    ("rows", "line", "field", "message"),
    [
        ([CONV_PREF, {"prompt": CONV_PREF["prompt"], "chosen": CONV_PREF["chosen"]}], 2, "rejected", "missing"),
        ([CONV_PREF, {**CONV_PREF, "chosen": [{"role": "assistant"}]}], 2, "chosen[0].content", "missing"),
        ([CONV_PREF, {**CONV_PREF, "rejected": [{"role": "robot", "content": "b"}]}], 2, "rejected[0].role",
         "unknown role"),
        ([{**CONV_PREF, "chosen": "a"}], 1, "chosen", "is a string while"),
        ([CONV_PREF, CONV_PREF, {"prompt": "q", "chosen": "a", "rejected": "b"}], 3, None, "format"),
        ([{**CONV_PREF, "chosen": [{"role": "user", "content": "a"}]}], 1, "chosen[0].role", "must be the assistant"),
        ([CONV_PREF, [1, 2]], 2, None, "JSON object"),
        ([{**CONV_PREF, "prompt": []}], 1, "prompt", "empty"),
    ],
)
def test_malformed_jsonl_is_rejected_with_line_and_field(
    rows: list, line: int, field: str | None, message: str, tmp_path: Path
) -> None:
    path = _write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError, match=message) as err:
        data.load_training_data(path, kind="preference")
    assert (err.value.path, err.value.row, err.value.field) == (str(path), line, field)


def test_export_and_reload_every_format(make_edit_run: Any, tmp_path: Path) -> None:
    pairs = data.preference_pairs_from_edit_run(make_edit_run(n_edited=3, n_accepted=1))
    for target in ("pairs.parquet", "pairs.jsonl", "pairs_folder"):
        path = data.save_dataset(pairs, tmp_path / target)
        back = data.load_training_data(path, kind="preference")
        assert len(back) == 3 and back[0]["chosen"] == pairs[0]["chosen"]
    with pytest.raises(DataError, match="missing"):  # preference data is not SFT data
        data.load_training_data(tmp_path / "pairs.parquet", kind="sft")


def test_empty_run_gives_empty_dataset_and_trainer_refuses_it(make_edit_run: Any, tiny: Any, tmp_path: Path) -> None:
    from persona_lab.core.errors import ConfigError
    from persona_lab.train import DPOTrainConfig, train_dpo

    run = make_edit_run(n_edited=0, n_accepted=3)
    assert len(data.preference_pairs_from_edit_run(run)) == 0
    model, tok = tiny
    with pytest.raises(ConfigError, match="holds no preference examples"):
        train_dpo(DPOTrainConfig(data=str(run), out=str(tmp_path / "o"), max_steps=1), model=model, tokenizer=tok)
