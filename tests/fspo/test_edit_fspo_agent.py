"""The fspo agent in the edit world: past (draft, edit) pairs of similar documents become its shots."""

from __future__ import annotations

from pathlib import Path

import pytest

from persona_lab.agents import Transition, create_agent
from persona_lab.eval.runner import RunConfig, Runner
from persona_lab.simulators import fspo as F
from persona_lab.testing import FakeChatModel


def test_prompt_shows_past_edits_as_preferred_and_drafts_as_dispreferred() -> None:
    prompts: list[str] = []

    def model(request):  # noqa: ANN001, ANN202
        prompts.append(request.messages[-1].content)
        return "## Preferred Response\nShort summary."

    agent = create_agent("fspo", "summarization", FakeChatModel(model), k=2, encoder="tfidf")
    obs1 = {"document": "The city council approved a new park near the river on Monday."}
    assert agent.act(obs1) == "Short summary."
    assert "# Example" not in prompts[0] and prompts[0].rstrip().endswith(obs1["document"])
    agent.update(Transition(obs1, "Short summary.", -3.0, {"edited_text": "- A new park.\n- Near the river."}))
    obs2 = {"document": "The council also approved a bike lane along the river park."}
    agent.act(obs2)
    shots, question = F.parse_episode(prompts[1])
    assert len(shots) == 1 and obs1["document"] in shots[0][0] and obs2["document"] in question
    assert shots[0][1] == "- A new park.\n- Near the river." and shots[0][2] == "Short summary."
    # an accepted draft is no preference pair: not remembered
    agent.update(Transition(obs2, "Short summary.", 0.0, {"edited_text": "Short summary."}))
    assert len(agent.memory) == 1


def test_scripted_fspo_agent_learns_in_the_runner(tmp_path: Path) -> None:
    costs = {}
    for agent in ("no-learning", "fspo"):
        cfg = RunConfig(env_id="persona_lab/EditEmail-v0", agent=agent, rounds=40,
                        agent_kwargs={"encoder": "tfidf"} if agent == "fspo" else {})
        result = Runner(cfg, tmp_path / agent, cache=False).run()
        costs[agent] = float(result.summary["metrics"]["episode/cost"])
    assert costs["fspo"] < 0.8 * costs["no-learning"], costs


def test_bench_prelude_runs_a_model_agent_against_the_scripted_user(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from persona_lab.eval.bench import AgentVariant, BenchConfig, markdown_table, run_bench
    from persona_lab.models import embeddings

    real = embeddings.open_encoder
    monkeypatch.setattr(embeddings, "open_encoder", lambda _name: real("tfidf"))  # no minilm load in a unit test

    cfg = BenchConfig(out=str(tmp_path), tasks=("email",), seeds=(0,), rounds=2, backend="fake", user="scripted",
                      agents=(AgentVariant("fspo-3", "fspo", {"k": 3, "encoder": "tfidf"}),))
    results = run_bench(cfg, concurrency=1, cache=False)
    run = json.loads((tmp_path / "runs" / "email" / "fspo-3" / "seed-0" / "config.json").read_text())
    assert run["config"]["user"] == "scripted" and run["config"]["backend"] == "fake"
    assert "user scripted" in markdown_table(results)
    assert results["tasks"]["email"]["fspo-3"]["n"] == 1
