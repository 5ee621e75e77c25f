"""Loader: the real PrefEval sample, and precise reports of crafted defects while good parts still load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from persona_lab.core.errors import ConfigError, DataError
from persona_lab.simulators.prefeval.data import FORMS, load_filler, load_prefeval, normalize_form


def test_reads_the_real_sample(sample_dir: Path) -> None:
    ds = load_prefeval(sample_dir)
    assert ds.errors == []
    assert ds.topics() == ["lifestyle_dietary", "travel_restaurant"]
    counts = ds.counts()
    for topic, c in counts.items():
        assert c["items"] > 50
        assert all(c[f] == c["items"] for f in FORMS) and c["mcq"] == c["items"], topic
    it = ds.items[0]
    assert it.item_id == "lifestyle_dietary/0" and it.forms() == FORMS
    assert it.choice is not None and it.choice.aligned_option == it.choice.options[0]
    assert it.persona is not None and len(it.persona.turns) >= 3
    assert it.mcq_options is not None and len(it.mcq_options) == 4
    # forms keep their own preference wording (the real files vary it slightly)
    diffs = [x for x in ds.items if x.explicit and x.choice and x.explicit.preference != x.choice.preference]
    assert all(x.preference_for("explicit") != x.preference_for("implicit-choice") for x in diffs)


def test_tiny_dataset_loads_with_verifiable(tiny_data: Path) -> None:
    ds = load_prefeval(tiny_data)
    assert ds.problems == []
    assert [it.item_id for it in ds.items] == ["snacks/0", "snacks/1", "travel/0"]
    assert ds.items[0].verifiable is not None and "peanut" in ds.items[0].verifiable.forbid
    assert ds.items[2].verifiable is None
    assert ds.counts()["snacks"]["verifiable"] == 2


def test_select_interleaves_topics(tiny_data: Path) -> None:
    ds = load_prefeval(tiny_data)
    assert [it.item_id for it in ds.select(limit=2)] == ["snacks/0", "travel/0"]
    assert [it.item_id for it in ds.select(topics=["travel"])] == ["travel/0"]
    assert [it.item_id for it in ds.select(verifiable_only=True)] == ["snacks/0", "snacks/1"]
    with pytest.raises(ConfigError, match="unknown topic"):
        ds.select(topics=["nope"])


FORM_FILES = {
    "explicit": "explicit_preference",
    "implicit-choice": "implicit_preference/choice-based",
    "implicit-persona": "implicit_preference/persona-driven",
    "mcq": "mcq_options",
}


def _edit(root: Path, form: str, topic: str, fn) -> Path:
    path = root / FORM_FILES[form] / f"{topic}.json"
    rows = json.loads(path.read_text(encoding="utf-8"))
    out = fn(rows)
    path.write_text(out if isinstance(out, str) else json.dumps(out), encoding="utf-8")
    return path


def _only(ds, severity: str = "error"):
    return [p for p in ds.problems if p.severity == severity]


def test_truncated_file_keeps_complete_rows_and_names_the_file(tmp_path: Path, make_dataset) -> None:
    root = make_dataset(tmp_path)
    path = _edit(root, "implicit-persona", "snacks", lambda rows: json.dumps(rows, indent=1)[:-200])
    ds = load_prefeval(root)
    (err,) = _only(ds)
    assert err.path == str(path) and err.row == 1
    assert "invalid JSON at line" in err.message and "kept the 1 complete row" in err.message
    # row 0 keeps all its forms; row 1 lost only the persona form; the other topic is untouched
    by_id = {it.item_id: it for it in ds.items}
    assert by_id["snacks/0"].persona is not None
    assert by_id["snacks/1"].persona is None and by_id["snacks/1"].explicit is not None
    assert by_id["travel/0"].forms() == FORMS


def test_missing_field_names_file_row_and_field(tmp_path: Path, make_dataset) -> None:
    root = make_dataset(tmp_path)

    def drop(rows):
        del rows[1]["question"]
        return rows

    path = _edit(root, "explicit", "snacks", drop)
    ds = load_prefeval(root)
    (err,) = _only(ds)
    assert (err.path, err.row, err.field) == (str(path), 1, "question")
    msg = str(err.as_error())
    assert str(path) in msg and "row 1" in msg and "field 'question'" in msg and "missing required field" in msg
    assert {it.item_id for it in ds.items} == {"snacks/0", "snacks/1", "travel/0"}
    assert next(it for it in ds.items if it.item_id == "snacks/1").explicit is None


@pytest.mark.parametrize(
    ("form", "mutate", "field", "needle"),
    [
        ("implicit-choice", lambda r: r.update(options=r["options"][:3]), "options", "found 3 entries"),
        ("implicit-choice", lambda r: r.update(aligned_op=r["options"][2]), "aligned_op", "must equal options[0]"),
        ("implicit-choice", lambda r: r["conversation"].pop("user_selection"), "conversation.user_selection", "missing"),
        ("implicit-persona", lambda r: r.update(conversation={"0": r["conversation"]["0"], "2": r["conversation"]["2"]}), "conversation", "turn keys"),
        ("implicit-persona", lambda r: r["conversation"]["1"].update(assistant=7), "conversation.1.assistant", "expected a string, found int"),
        ("mcq", lambda r: r.update(classification_task_options=["a", "a", "b", "c"]), "classification_task_options", "not distinct"),
        ("mcq", lambda r: r.update(violation_probability=3), "violation_probability", "in [0, 1]"),
        ("explicit", lambda r: r.update(verifiable={"forbid": "peanut"}), "verifiable.forbid", "list of non-empty strings"),
        ("explicit", lambda r: r.update(preference="   "), "preference", "empty string"),
    ],
)
def test_row_defects_are_precise(tmp_path: Path, make_dataset, form: str, mutate, field: str, needle: str) -> None:
    root = make_dataset(tmp_path)

    def edit(rows):
        mutate(rows[0])
        return rows

    path = _edit(root, form, "snacks", edit)
    ds = load_prefeval(root)
    errs = _only(ds)
    assert len(errs) == 1, errs
    assert (errs[0].path, errs[0].row, errs[0].field) == (str(path), 0, field)
    assert needle in errs[0].message
    assert len(ds.items) == 3  # the item stays, without the broken form
    with pytest.raises(DataError, match=f"row 0, field '{field.split('[')[0]}"):
        load_prefeval(root, strict=True)


def test_not_an_array_and_bad_rows(tmp_path: Path, make_dataset) -> None:
    root = make_dataset(tmp_path)
    p1 = _edit(root, "mcq", "snacks", lambda rows: {"rows": rows})
    p2 = _edit(root, "explicit", "travel", lambda rows: [*rows, "not an object"])
    ds = load_prefeval(root)
    msgs = {(p.path, p.row): p.message for p in _only(ds)}
    assert "expected a JSON array" in msgs[(str(p1), None)]
    assert "expected an object, found str" in msgs[(str(p2), 1)]
    assert all(it.mcq_options is None for it in ds.items if it.topic == "snacks")
    assert any("different row counts" in p.message for p in _only(ds, "warning"))


def test_not_utf8_and_misaligned_rows_warn(tmp_path: Path, make_dataset) -> None:
    root = make_dataset(tmp_path)
    bad = root / FORM_FILES["mcq"] / "travel.json"
    bad.write_bytes(b"[\xff\xfe]")
    _edit(root, "implicit-choice", "snacks", lambda rows: rows[::-1])
    ds = load_prefeval(root)
    assert any("not UTF-8" in p.message and p.path == str(bad) for p in _only(ds))
    warns = [p for p in _only(ds, "warning") if "joined by row index" in p.message]
    assert {w.row for w in warns} == {0, 1} and {w.field for w in warns} == {"question", "preference"}


def test_missing_dir_and_unknown_form() -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_prefeval("/nonexistent/prefeval")
    assert normalize_form("persona-driven") == "implicit-persona"
    with pytest.raises(ConfigError, match="did you mean 'explicit'"):
        normalize_form("explicitt")


def test_filler_loader(tmp_path: Path, make_filler) -> None:
    convs = make_filler(3)
    convs.insert(1, [{"role": "robot", "content": "x"}])
    convs.append("not a list")
    path = tmp_path / "filler.json"
    path.write_text(json.dumps(convs), encoding="utf-8")
    f = load_filler(path)
    assert len(f.pairs) == 6  # 2 pairs per good conversation, system messages dropped
    assert f.pairs[0][0].startswith("filler question number 0")
    assert [(p.row, p.field) for p in f.problems] == [(1, "[0].role"), (4, None)]
    msgs = f.messages(2)
    assert [m.role for m in msgs] == ["user", "assistant"] * 2
    with pytest.raises(ConfigError, match="has 6 turn pairs"):
        f.messages(7)
