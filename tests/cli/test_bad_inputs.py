"""One table of bad command lines: each exits 2 with a message naming the bad value (or the fix), and
never a traceback. Covers every subcommand's flags; add a row when you add a flag."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from persona_lab.cli.main import main

E = "persona_lab/EditEmail-v0"
P = "persona_lab/Persuasion-v0"

# (command line with {t} = a scratch folder, phrase the error must contain)
CASES: list[tuple[str, str]] = [
    # run: agent and env arguments
    (f"run {E} --agent cipher --agent-arg nope=1 --out {{t}}/o", "takes no argument 'nope'"),
    (f"run {E} --agent cipher --agent-arg k=-1 --out {{t}}/o", "k must be >= 1"),
    (f"run {E} --agent cipher --agent-arg k=abc --out {{t}}/o", "{'k': 'abc'}"),
    (f"run {E} --agent cipher --agent-arg encoder=nope --out {{t}}/o", "unknown encoder 'nope'"),
    (f"run {E} --agent-arg k --out {{t}}/o", "expected key=value, got 'k'"),
    (f"run {E} --env-arg nope=1 --out {{t}}/o", "takes no argument 'nope'"),
    (f"run {E} --env-arg noise=abc --out {{t}}/o", "got 'abc'"),
    (f"run {E} --env-arg effort=abc --out {{t}}/o", "got 'abc'"),
    (f"run {E} --env-arg noise=7 --out {{t}}/o", "got 7"),
    (f"run {E} --env-arg effort=0 --out {{t}}/o", "got 0"),
    (f"run {E} --env-arg rounds=3 --out {{t}}/o", "use --rounds instead"),
    (f"run {E} --effort 0 --out {{t}}/o", "argument --effort: expected a whole number >= 1, got 0"),
    (f"run {E} --effort -1 --out {{t}}/o", "argument --effort"),
    (f"run {E} --noise 1.5 --out {{t}}/o", "argument --noise: expected a probability in [0, 1], got 1.5"),
    (f"run {E} --noise -0.1 --out {{t}}/o", "argument --noise"),
    (f"run {P} --population prelude --out {{t}}/o", "'prelude'"),
    (f"run {P} --effort 1 --out {{t}}/o", "takes no argument 'effort'"),
    # run: files and folders
    (f"run {E} --population {{t}}/latin1.yaml --out {{t}}/o", "not UTF-8"),
    (f"run {E} --population {{t}}/missing.yaml --out {{t}}/o", "file not found"),
    (f"run {E} --population nope --out {{t}}/o", "unknown population 'nope'"),
    (f"run {E} --corpus {{t}}/afile --out {{t}}/o", "afile"),
    (f"run {E} --corpus {{t}}/emptydir --out {{t}}/o", "no <source>.jsonl"),
    (f"run {E} --out {{t}}/afile", "is a file, not a folder"),
    (f"run {E} --out {{t}}/afile/run", "cannot be created"),
    (f"run {E} --out /proc/persona-lab-test/run", "cannot be created"),
    (f"run {E} --cache-dir {{t}}/afile --out {{t}}/o", "--cache-dir"),
    (f"run {E} --cache-dir /proc/persona-lab-test --out {{t}}/o", "--cache-dir"),
    (f"run {E} --out {{t}}/corrupt --resume", "config.json is corrupt"),
    (f"run {E} --out {{t}}/corrupt", "config.json is corrupt"),
    (f"run {E} --out {{t}}/latin1run --resume", "config.json is corrupt"),
    # run: numbers and names
    (f"run {E} --rounds 0 --out {{t}}/o", "argument --rounds"),
    (f"run {E} --rounds -3 --out {{t}}/o", "argument --rounds"),
    (f"run {E} --episodes 0 --out {{t}}/o", "argument --episodes"),
    (f"run {E} --concurrency 0 --out {{t}}/o", "argument --concurrency"),
    (f"run {E} --executor dask --out {{t}}/o", "unknown executor 'dask'"),
    (f"run {E} --ray-address auto --out {{t}}/o", "--ray-address 'auto' needs --executor ray"),
    (f"run {E} --executor ray --ray-address ' ' --out {{t}}/o", "--ray-address is empty"),
    (f"run {E} --seed x --out {{t}}/o", "argument --seed"),
    (f"run {E} --user robot --out {{t}}/o", "argument --user"),
    (f"run {E} --backend bogus --out {{t}}/o", "unknown backend 'bogus'"),
    (f"run {E} --user-backend bogus --out {{t}}/o", "unknown backend 'bogus'"),
    ("run persona_lab/EditEmial-v0 --out {t}/o", "did you mean 'persona_lab/EditEmail-v0'"),
    (f"run {E} --agent oracel --out {{t}}/o", "did you mean 'oracle'"),
    (f"run {P} --agent cipher --out {{t}}/o", "not 'persuasion'"),
    (f"run {E} --rounds 3", "--out"),
    # bench prelude
    ("bench prelude --rounds 0 --out {t}/b", "argument --rounds"),
    ("bench prelude --effort 0 --out {t}/b", "argument --effort"),
    ("bench prelude --noise 2 --out {t}/b", "argument --noise"),
    ("bench prelude --concurrency 0 --out {t}/b", "argument --concurrency"),
    ("bench prelude --executor dask --out {t}/b", "unknown executor 'dask'"),
    ("bench prelude --executor processes --ray-address auto --out {t}/b", "needs --executor ray"),
    ("bench prelude --seeds x --out {t}/b", "argument --seeds"),
    ("bench prelude --tasks nope --out {t}/b", "argument --tasks"),
    ("bench prelude --encoder nope --quick --agents cipher-1 --out {t}/b", "unknown encoder 'nope'"),
    ("bench prelude --agents nope --out {t}/b", "unknown bench agents ['nope']"),
    ("bench prelude --population {t}/latin1.yaml --quick --agents oracle --out {t}/b", "not UTF-8"),
    ("bench prelude --out {t}/afile --quick", "is a file, not a folder"),
    ("bench prelude --cache-dir {t}/afile --quick --out {t}/b", "--cache-dir"),
    ("bench prelude --backend bogus --quick --agents oracle --out {t}/b", "unknown backend 'bogus'"),
    ("bench nope", "invalid choice: 'nope'"),
    # prefeval
    ("prefeval --backend fake --turns x --out {t}/p", "--turns takes integers"),
    ("prefeval --backend fake --turns -1 --out {t}/p", "turns must be >= 0"),
    ("prefeval --backend fake --limit 0 --out {t}/p", "argument --limit"),
    ("prefeval --backend fake --concurrency 0 --out {t}/p", "argument --concurrency"),
    ("prefeval --backend fake --words -1 --out {t}/p", "argument --words"),
    ("prefeval --backend fake --max-new-tokens 0 --out {t}/p", "argument --max-new-tokens"),
    ("prefeval --backend fake --reply-max-new-tokens 0 --out {t}/p", "argument --reply-max-new-tokens"),
    ("prefeval --backend fake --rag-k 0 --methods rag --out {t}/p", "argument --rag-k"),
    ("prefeval --backend fake --seed x --out {t}/p", "argument --seed"),
    ("prefeval --backend fake --methods rag --rag-encoder nope --out {t}/p", "unknown --rag-encoder 'nope'"),
    ("prefeval --backend fake --data {t}/missing --out {t}/p", "does not exist"),
    ("prefeval --backend fake --data {t}/pe-latin1 --turns 0 --out {t}/p", "no test to run"),
    ("prefeval --backend fake --filler {t}/latin1.yaml --turns 0 --out {t}/p", "filler"),
    ("prefeval --backend fake --forms nope --out {t}/p", "'nope'"),
    ("prefeval --backend fake --methods nope --out {t}/p", "'nope'"),
    ("prefeval --backend fake --tasks nope --out {t}/p", "'nope'"),
    ("prefeval --backend fake --topics nope --out {t}/p", "'nope'"),
    ("prefeval --backend fake --out {t}/afile --limit 1 --turns 0", "is a file, not a folder"),
    ("prefeval --backend fake --cache-dir {t}/afile --limit 1 --turns 0 --out {t}/p", "--cache-dir"),
    ("prefeval --backend bogus --out {t}/p", "unknown backend 'bogus'"),
    ("prefeval --backend fake --judge bogus --out {t}/p", "unknown backend 'bogus'"),
    ("prefeval --out {t}/p", "--backend is required"),
    ("prefeval --backend fake", "--out is required"),
    ("prefeval --validate --data {t}/missing", "does not exist"),
    # check, chat, ls
    ("check persona_lab/Nope-v0", "unknown env"),
    (f"check {E} --rounds 0", "argument --rounds"),
    ("chat --backend fake --max-new-tokens 0 hi", "argument --max-new-tokens"),
    ("chat --backend fake --temperature -1 hi", "argument --temperature"),
    ("chat --backend fake --seed x hi", "argument --seed"),
    ("chat --backend bogus hi", "unknown backend 'bogus'"),
    ("chat --backend fake --cache-dir {t}/afile hi", "--cache-dir"),
    ("ls nope", "invalid choice: 'nope'"),
    # decoding per role, calibrate
    (f"run {E} --user-gen temp=1 --out {{t}}/o", "unknown decoding setting"),
    (f"run {E} --agent-gen temperature=-1 --out {{t}}/o", "temperature must be >= 0"),
    (f"calibrate {E} --user-backend fake:x --limit 0 --no-cache", "limit must be >= 1"),
    ("calibrate persona_lab/PrefEval-v0 --user-backend fake:x --limit 2 --no-cache", "does not support"),
    (f"run {E} --backend fake:x --rounds 1 --calibration missing.json --out {{t}}/o", "calibration file"),
    (f"calibrate {E} --user-backend bogus", "unknown backend 'bogus'"),
    # train
    ("train sft --config {t}/latin1.yaml", "not UTF-8"),
    ("train sft --config {t}/missing.yaml", "does not exist"),
    ("train sft --data {t}/missing --base smollm2-135m --out {t}/t", "not found"),
    ("train sft --data {t}/latin1.json --base smollm2-135m --out {t}/t", "not UTF-8"),
    ("train sft --lora-r 0 --data {t}/x.jsonl --base smollm2-135m --out {t}/t", "lora_r=0"),
    ("train dpo --batch-size 0 --data {t}/x.jsonl --base smollm2-135m --out {t}/t", "batch_size=0"),
    ("train ipo --max-steps x --data {t}/x.jsonl --base smollm2-135m --out {t}/t", "max-steps"),
    ("train sft --device tpu --data {t}/x.jsonl --base smollm2-135m --out {t}/t", "argument --device"),
    ("train data {t}/missing --kind sft --out {t}/t.jsonl", "not found"),
    ("train data {t}/latin1.json --kind sft --out {t}/t.jsonl", "not UTF-8"),
    ("train data {t}/corrupt --kind preference --out {t}/t.jsonl", "not a run directory"),
    ("train data {t}/x.jsonl --kind nope --out {t}/t.jsonl", "argument --kind"),
    ("train nope", "invalid choice: 'nope'"),
    # fspo (data, show), train fspo, bench fspo
    ("fspo data --out {t}/d --k 1", "k=1"),
    ("fspo data --out {t}/d --eval-questions 0", "eval_questions=0"),
    ("fspo data --out {t}/d --kinds nope", "unknown dispreferred kind 'nope'"),
    ("fspo show --data {t}/emptydir", "no meta.json"),
    ("train fspo --loss kto --data {t}/x.jsonl --base smollm2-135m --out {t}/t", "argument --loss"),
    ("bench fspo --base scripted --rows nope --out {t}/b", "unknown rows ['nope']"),
    # cache
    ("cache --cache-dir {t}/emptydir prune", "prune needs a limit"),
    ("cache --cache-dir {t}/emptydir prune --max-mb -1", "must be >= 0"),
    ("cache --cache-dir {t}/afile stats", "--cache-dir"),
    ("cache nope", "invalid choice: 'nope'"),
]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    t = tmp_path_factory.mktemp("bad")
    latin1 = "préférence: café\n".encode("latin-1")
    for name in ("latin1.yaml", "latin1.json"):
        (t / name).write_bytes(latin1)
    (t / "afile").write_text("x")
    (t / "emptydir").mkdir()
    (t / "x.jsonl").write_text('{"prompt": "a", "completion": "b"}\n')
    (t / "corrupt").mkdir()
    (t / "corrupt" / "config.json").write_text("{oops")
    (t / "latin1run").mkdir()
    (t / "latin1run" / "config.json").write_bytes(latin1)
    (t / "pe-latin1" / "explicit_preference").mkdir(parents=True)
    (t / "pe-latin1" / "explicit_preference" / "travel.json").write_bytes(latin1)
    return t


@pytest.mark.parametrize(("command", "phrase"), CASES, ids=[c for c, _ in CASES])
def test_bad_input_exits_2_with_a_message(command: str, phrase: str, scratch: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    argv = shlex.split(command.format(t=scratch))
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse usage errors
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2, err
    assert phrase in err, err
    assert "Traceback" not in err
    assert not (scratch / "o" / "config.json").exists(), "a refused run left a config.json behind"


def test_table_covers_every_subcommand() -> None:
    from persona_lab.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    covered = {c.split()[0] for c, _ in CASES}
    assert set(sub.choices) <= covered, set(sub.choices) - covered
    assert len(CASES) >= 34
