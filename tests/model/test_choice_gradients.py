"""Choosing on detached candidates and rebuilding the negative from the chosen rows (``choice_input`` means
/ layers) gives the same loss and gradients as letting every candidate carry gradient."""
from __future__ import annotations

from typing import Any, Callable

import pytest
import torch


@pytest.mark.parametrize("strategy", ["dns", "ahns", "mixgcf"])
def test_detached_choice_equals_full_gradient(build: Callable[..., Any], strategy: str) -> None:
    built = build("lightgcn", strategy, neg_params={"n_candidates": 6})
    model, batch = built.model, built.batch()
    assert model.strategy.choice_input in ("means", "layers")
    results = []
    for choice in (model.strategy.choice_input, "grad"):
        model.strategy.choice_input = choice  # instance attribute shadows the class default
        model.generator.manual_seed(0)
        model.zero_grad()
        loss = model.calculate_loss(batch)
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    (loss_a, grads_a), (loss_b, grads_b) = results
    torch.testing.assert_close(loss_a, loss_b)
    assert len(grads_a) == len(grads_b) > 0
    for a, b in zip(grads_a, grads_b):
        torch.testing.assert_close(a, b)
