"""Choosing on detached candidates and rebuilding the negative from the chosen rows (``choice_input`` means
/ layers) gives the same loss and gradients as letting every candidate carry gradient (``grad``)."""
from __future__ import annotations

from typing import Any, Callable

import pytest
import torch
from test_neggen import FAST
from torch import Tensor

from recbole_neggen.config import Config
from recbole_neggen.utils import create_dataset, data_preparation, get_model


def loss_and_grads(model: Any, batch: Any, choice: str) -> tuple[Tensor, dict[str, Tensor]]:
    """Loss and parameter gradients of one batch with the strategy's ``choice_input`` forced to ``choice``."""
    model.strategy.choice_input = choice  # instance attribute shadows the class default
    model.generator.manual_seed(0)
    model.zero_grad()
    loss = model.calculate_loss(batch)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("strategy", ["dns", "ahns", "mixgcf", "dens"])
def test_nsrec_detached_choice_equals_full_gradient(build: Callable[..., Any], strategy: str) -> None:
    built = build("lightgcn", strategy, neg_params={"n_candidates": 6})
    model, batch = built.model, built.batch()
    assert model.strategy.choice_input in ("means", "layers")
    (loss_a, grads_a), (loss_b, grads_b) = (loss_and_grads(model, batch, c) for c in (model.strategy.choice_input, "grad"))
    torch.testing.assert_close(loss_a, loss_b)
    assert grads_a.keys() == grads_b.keys() and grads_a
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], msg=name)


@pytest.mark.parametrize("strategy", ["dns", "mixgcf", "dens"])
def test_neggen_detached_choice_matches_full_gradient_on_the_backbone(tmp_path, strategy: str) -> None:
    config = Config("NegGen", "synthetic", config_dict={**FAST, "prepared_path": str(tmp_path),
                                                        "neg_strategy": strategy, "neg_params": {"n_candidates": 8}})
    config["checkpoint_dir"] = str(tmp_path / "runs")
    train, _, _ = data_preparation(config, create_dataset(config))
    model = get_model("NegGen")(config, train._dataset)
    batch = next(iter(train))
    (loss_a, grads_a), (loss_b, grads_b) = (loss_and_grads(model, batch, c) for c in (model.strategy.choice_input, "grad"))
    torch.testing.assert_close(loss_a, loss_b)  # the per-epoch term was refreshed with these very weights
    assert grads_a.keys() == grads_b.keys() and "backbone.item_embedding.weight" in grads_a
    for name in grads_a:  # the causal module also learns from the real negative's fresh term on the fast path
        if name.startswith("backbone."):
            torch.testing.assert_close(grads_a[name], grads_b[name], msg=name)
    assert not torch.equal(grads_a["encoder.text.weight"], grads_b["encoder.text.weight"])
