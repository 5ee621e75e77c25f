"""``--protocol paper``: the messages sent equal the original code's (its message-list branch), built
here independently from the real sample and a fixture checkout this test writes in PrefEval's file
layout with its own placeholder texts (no PrefEval text is copied)."""

from __future__ import annotations

import json
import random
import textwrap
from pathlib import Path

import pytest

from persona_lab.core.errors import ConfigError
from persona_lab.eval.prefeval.paper import (
    load_paper_texts,
    original_followed,
    paper_extract_choice,
    paper_shuffle,
)
from persona_lab.eval.prefeval.runner import PrefEvalConfig, PrefEvalRunner, request_messages
from persona_lab.models.base import ChatRequest
from persona_lab.simulators.prefeval.data import load_filler, load_prefeval
from persona_lab.testing import FakeChatModel

COT = "\nFIXTURE-COT: think about what the user told you before.\n\n"
REMIND = "\nFIXTURE-REMIND keep my earlier wishes in mind."
SYSTEM = "FIXTURE system prompt."
CRITIQUE = "FIXTURE critique request:\nCritic: "
JUDGE_SYSTEM = "FIXTURE judge system."
JUDGE = {
    "acknowledge": "ACK q={question} r={end_generation}\n<preference>..</preference><answer>[Yes/No]</answer>",
    "violation": "VIO p={preference} q={question} r={end_generation}",
    "hallucination": "HAL p={preference} said={assistant_restatement}",
    "helpful": "HELP p={preference} q={question} r={end_generation}",
}


def write_checkout(root: Path) -> Path:
    """A stand-in for a PrefEval checkout: the same files, functions and variable names, other texts."""
    files = {
        "config.yaml": f"max_gen_tokens: 300\nmax_mcq_tokens: 5\nsystem_prompt: '{SYSTEM}'\n",
        "utils/common_utils.py": f"import tiktoken  # never imported by persona-lab\n\nCOT_PROMPT = {COT!r}\nREMINDER = {REMIND!r}\n",
        "utils/explicit_utils.py": textwrap.dedent('''
            from .common_utils import COT_PROMPT, REMINDER

            def get_question_prompt(preference, pref_generation, question, multi_inter_message, model_type,
                                    turn_number, remind, cot, args, max_tokens, system_prompt=""):
                if remind:
                    question = question + REMINDER
                if cot:
                    question = COT_PROMPT + question
                question += f" [FIXTURE cap: {max_tokens} words]"
                return question
            '''),
        "utils/utils_mcq.py": textwrap.dedent('''
            def get_mcq_question_format(options):
                formatted_options = format_options(options)
                mcq_question_format = f"""
                FIXTURE pick one: \\n{formatted_options}\\nanswer as <choice>X</choice>
                """
                return mcq_question_format
            '''),
        "generation_task/baselines_handling.py": textwrap.dedent(f'''
            def handle_selfcritic_task(args, preference, question, **kw):
                critic_request = {CRITIQUE!r}
                revision_request = f"FIXTURE revise for: {{question}}. Response: "
                return critic_request, revision_request
            '''),
        "generation_task/llm_based_evaluation_errortypes.py": f"def main():\n    system_prompt = {JUDGE_SYSTEM!r}\n",
        **{f"error_type/check_{k}.txt": v for k, v in JUDGE.items()},
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root


def prefeval_filler(path: Path, n_convs: int = 4) -> Path:
    convs = [{"conversation": [{"role": ("user", "assistant")[k % 2], "content": f"filler {c}.{k}"} for k in range(4)]}
             for c in range(n_convs)]
    path.write_text(json.dumps(convs), encoding="utf-8")
    return path


def original_final_user(question: str, method: str, tail: str) -> str:
    """The original's final user turn: remind appends, cot prefixes, then the cap / options block."""
    if method == "reminder":
        question = question + REMIND
    if method == "cot":
        question = COT + question
    return question + tail


def original_options_block(options: list[str]) -> str:
    formatted = "\n".join(f"{'ABCD'[i]}. {o}" for i, o in enumerate(options))
    return f"\n    FIXTURE pick one: \n{formatted}\nanswer as <choice>X</choice>\n    "


def original_shuffles(n_rows: int, options_by_row: list[list[str]]) -> list[tuple[list[str], str]]:
    """``random.seed(41)`` then one ``random.sample`` per row in file order, as the original run does."""
    random.seed(41)
    out = []
    for r in range(n_rows):
        opts = options_by_row[r]
        shuffled = random.sample(opts, len(opts))
        out.append((shuffled, "ABCD"[shuffled.index(opts[0])]))
    return out


def _responder(req: ChatRequest) -> str:
    last = req.messages[-1].content
    if req.messages[0].content == JUDGE_SYSTEM:
        if last.startswith("ACK"):
            return "<preference>you like fish</preference><answer>Yes</answer>"
        if last.startswith("VIO"):
            return "<explanation>fine</explanation><answer>No</answer>"
        if last.startswith("HAL"):
            return "<answer>No</answer>"
        return "I think it helps."  # unparseable helpfulness answer: unjudged here, 'followed' for the original
    if "FIXTURE pick one" in last:
        return "B</choice>"
    return f"answer {len(req.messages)}"


@pytest.fixture
def paper_run(sample_dir: Path, tmp_path: Path):
    checkout = write_checkout(tmp_path / "PrefEval")
    filler_path = prefeval_filler(tmp_path / "filtered_inter_turns.json")
    cfg = PrefEvalConfig(
        backend="fake", judge="fake:judge", data_dir=str(sample_dir), filler=str(filler_path), turns=(0, 2),
        topics=("travel_restaurant",), limit=3, methods=("zero-shot", "reminder", "cot", "self-critic"),
        protocol="paper", protocol_dir=str(checkout),
    )
    model, judge = FakeChatModel(_responder), FakeChatModel(_responder, name="judge")
    runner = PrefEvalRunner(cfg, model, tmp_path / "run", judge_model=judge, concurrency=2)
    summary = runner.run()
    return runner, model, judge, summary, load_filler(filler_path), tmp_path / "run"


def test_messages_equal_the_originals(paper_run, sample_dir: Path) -> None:
    runner, model, judge, summary, filler, out = paper_run
    ds = load_prefeval(sample_dir)
    items = {it.row: it for it in ds.items if it.topic == "travel_restaurant"}
    mcq_rows = json.loads((sample_dir / "mcq_options" / "travel_restaurant.json").read_text())
    shuffles = original_shuffles(3, [r["classification_task_options"] for r in mcq_rows])
    sent = {}
    for r in model.requests:
        sent.setdefault(tuple((m.role, m.content) for m in r.messages), set()).add(r.params.max_new_tokens)
    filler_msgs = []
    for c in json.loads(Path(filler.path).read_text()):
        filler_msgs += [(m["role"], m["content"]) for m in c["conversation"]]

    checked = 0
    for rec in runner.records():
        if rec["form"] == "question-only":
            continue
        it = items[rec["row"]]
        budget = 5 if rec["task"] == "classification" else 300
        # the preference block, as the original's message-list branch lays it out
        if rec["form"] == "explicit":
            reply_req = (("system", SYSTEM), ("user", it.explicit.preference))
            assert budget in sent[reply_req]  # the reply to the preference uses the task's budget
            reply = f"answer {len(reply_req)}"
            block = [("user", it.explicit.preference), ("assistant", reply)]
        elif rec["form"] == "implicit-choice":
            conv = json.loads((sample_dir / "implicit_preference/choice-based/travel_restaurant.json").read_text())[it.row]["conversation"]
            block = [("user" if k in ("query", "user_selection") else "assistant", v) for k, v in conv.items()]
        else:
            conv = json.loads((sample_dir / "implicit_preference/persona-driven/travel_restaurant.json").read_text())[it.row]["conversation"]
            block = [(role, text) for turn in conv.values() for role, text in turn.items()]
        if rec["task"] == "generation":
            tail = " [FIXTURE cap: 300 words]"
        else:
            shuffled, correct = shuffles[it.row]
            tail = original_options_block(shuffled)
            assert rec["correct"] == correct and rec["options"] == shuffled
            assert rec["answer"] == "B" and rec["prefill"] == "<choice>"
        expected = (("system", SYSTEM), *block, *filler_msgs[: 2 * rec["turns"]],
                    ("user", original_final_user(it.question, rec["method"], tail)))
        assert expected in sent, rec["key"]
        assert budget in sent[expected]
        assert tuple((m["role"], m["content"]) for m in request_messages(rec, filler, include_steps=False)) == expected
        if rec["method"] == "self-critic":
            critique = (*expected, ("assistant", f"answer {len(expected)}"), ("user", CRITIQUE))
            assert critique in sent and 300 in sent[critique]
            revision = (*critique, ("assistant", f"answer {len(critique)}"),
                        ("user", f"FIXTURE revise for: {it.question}. Response: "))
            assert revision in sent and 500 in sent[revision]
        checked += 1
    assert checked == 3 * 3 * 2 * (4 + 3)  # items x forms x turns x (generation methods + classification methods)

    # the judge: the four fixture prompts with the original placeholders filled, under the judge system prompt
    rec = next(r for r in runner.records() if r["task"] == "generation" and r["form"] == "explicit")
    asked = {r.messages[-1].content for r in judge.requests if r.messages[0].content == JUDGE_SYSTEM}
    pref, q, resp = rec["preference"], rec["question"], rec["response"]
    assert f"ACK q={q} r={resp}\n<preference>..</preference><answer>[Yes/No]</answer>" in asked
    assert f"VIO p={pref} q={q} r={resp}" in asked and f"HELP p={pref} q={q} r={resp}" in asked
    assert f"HAL p={pref} said=you like fish" in asked
    assert all(r.params.max_new_tokens == 100 for r in judge.requests)
    v = rec["judge"]
    assert v["status"] == "unjudged" and v["detail"]["original_followed"] is True

    report = (out / "report.md").read_text()
    assert report.startswith("# PrefEval run — protocol: paper")
    assert "would score" in report and "unjudged here" in report
    # rows 0, 1, 2 get C, D, C correct under the original rule; 3 items x (3 forms x 2 turns + question-only) x 3 methods
    assert "Correct letters over all cells: C 42, D 21; answers given: B 63" in report
    assert "stricter parser disagrees on 0 of" in report  # "B</choice>" after the pre-filled tag reads as B both ways
    config = json.loads((out / "config.json").read_text())
    assert config["protocol"]["name"] == "paper" and "utils/common_utils.py" in config["protocol"]["files"]
    assert config["config"]["max_new_tokens"] == 300 and config["config"]["classification_max_new_tokens"] == 5


def test_validate_reads_the_checkout(tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from persona_lab.cli import prefeval as prefeval_cli

    parser = argparse.ArgumentParser()
    prefeval_cli.add_parser(parser.add_subparsers(dest="command"))
    checkout = write_checkout(tmp_path / "PrefEval")
    args = parser.parse_args(["prefeval", "--data", str(tiny_data), "--validate", "--protocol", "paper",
                              "--protocol-dir", str(checkout)])
    assert args.func(args) == 0
    assert "protocol paper: 10 files read from" in " ".join(capsys.readouterr().out.split())
    args = parser.parse_args(["prefeval", "--data", str(tiny_data), "--validate", "--protocol", "paper",
                              "--protocol-dir", str(tmp_path)])
    with pytest.raises(ConfigError, match="not a PrefEval checkout"):
        args.func(args)


def test_checkout_errors_and_rag(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a PrefEval checkout"):
        load_paper_texts(tmp_path)
    with pytest.raises(ConfigError, match="--protocol-dir"):
        PrefEvalConfig(backend="fake", protocol="paper")
    checkout = write_checkout(tmp_path / "PrefEval")
    texts = load_paper_texts(checkout)
    assert texts.reminder == REMIND and texts.max_mcq_tokens == 5 and len(texts.sources) == 10
    from persona_lab.eval.prefeval.paper import PaperMethod

    with pytest.raises(ConfigError, match="no paper-protocol version"):
        PaperMethod("rag", texts)


@pytest.mark.parametrize(
    ("reply", "letter"),
    [("B</choice>", "B"), ("  C </choice> because", "C"), ("b</choice>", None), ("<b>B</b></choice>", None), ("", None),
     ("A or B</choice>", "A")],
)
def test_original_choice_parse(reply: str, letter: str | None) -> None:
    assert paper_extract_choice(reply) == letter


def test_shuffle_matches_a_seeded_original_run() -> None:
    opts = ("right", "w1", "w2", "w3")
    random.seed(41)
    expected = [random.sample(list(opts), 4) for _ in range(30)]
    assert [list(paper_shuffle(opts, r).options) for r in range(30)] == expected


def test_original_accuracy_rule() -> None:
    assert original_followed("", "", "", "") is True  # unparsed answers count as followed there
    assert original_followed("Yes", "No", "No", "Yes") is True
    assert original_followed("No", "Yes", "", "Yes") is False
    assert original_followed("Yes", "No", "No", "No") is False
