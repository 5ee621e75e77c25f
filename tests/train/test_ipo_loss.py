"""The IPO loss TRL computes for us, checked against a hand computation on a two-example batch.

What TRL 1.16 computes (``DPOTrainer`` with ``loss_type="ipo"``), and what this test pins down:

    h_i    = Σ_t log(π/π_ref)(chosen_t) / |chosen_i| - Σ_t log(π/π_ref)(rejected_t) / |rejected_i|
    loss   = mean_i (h_i - 1/(2β))²

i.e. the log-ratios are *averaged over the completion's tokens*, not summed as in the FSPO paper's
formula. The test also shows the summed form gives a different number on the same batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from datasets import Dataset

from persona_lab.train import IPOTrainConfig, make_ipo_trainer

PAIRS = [
    {
        "prompt": [{"role": "user", "content": "Email Bob about lunch."}],
        "chosen": [{"role": "assistant", "content": "Hi Bob, lunch at noon?"}],
        "rejected": [{"role": "assistant", "content": "Dear Robert, I am writing to ask whether you might join me."}],
    },
    {
        "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Summarize the memo."}],
        "chosen": [{"role": "assistant", "content": "Budget is up 5%."}],
        "rejected": [{"role": "assistant", "content": "The memo says a lot."}],
    },
]


def completion_logp(model: Any, prompt_ids: list[int], completion_ids: list[int]) -> torch.Tensor:
    """Σ log p(completion token | everything before it), with one plain forward pass."""
    ids = torch.tensor([prompt_ids + completion_ids])
    logits = model(input_ids=ids).logits[0, :-1].float()
    token_logp = torch.log_softmax(logits, dim=-1).gather(-1, ids[0, 1:, None])[:, 0]
    return token_logp[len(prompt_ids) - 1 :].sum()


def test_ipo_loss_matches_hand_computation(tiny: tuple[Any, Any], tmp_path: Path) -> None:
    model, tok = tiny
    beta = 0.25
    config = IPOTrainConfig(out=str(tmp_path), max_steps=1, batch_size=2, beta=beta)
    trainer = make_ipo_trainer(config, dataset=Dataset.from_list(PAIRS), model=model, tokenizer=tok).trainer

    # Move the policy away from the reference (a fresh LoRA adapter equals it: B = 0).
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in trainer.model.named_parameters():
            if "lora_B" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
    trainer.model.eval()
    batch = next(iter(trainer.get_train_dataloader()))
    assert batch["input_ids"].shape[0] == 4  # [chosen_1, chosen_2, rejected_1, rejected_2]
    with torch.no_grad():
        trl_loss = float(trainer.compute_loss(trainer.model, batch))

    h_mean, h_sum = [], []
    with torch.no_grad():
        for row in trainer.train_dataset:
            p, c, r = row["prompt_ids"], row["chosen_ids"], row["rejected_ids"]
            assert len(c) != len(r)  # so that averaging and summing differ
            pol_c, pol_r = completion_logp(trainer.model, p, c), completion_logp(trainer.model, p, r)
            with trainer.model.disable_adapter():  # the reference: the base model
                ref_c, ref_r = completion_logp(trainer.model, p, c), completion_logp(trainer.model, p, r)
            h_mean.append((pol_c - ref_c) / len(c) - (pol_r - ref_r) / len(r))
            h_sum.append((pol_c - ref_c) - (pol_r - ref_r))
    target = 1 / (2 * beta)
    by_hand = float(torch.stack([(h - target) ** 2 for h in h_mean]).mean())
    by_hand_summed = float(torch.stack([(h - target) ** 2 for h in h_sum]).mean())

    assert trl_loss == pytest.approx(by_hand, rel=1e-4, abs=1e-5)
    assert abs(trl_loss - by_hand_summed) > 0.1 * by_hand  # TRL does not use the summed form
