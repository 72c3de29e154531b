"""The backbone contract: every backbone (MF, LightGCN, VBPR, FREEDOM) passes the same tests inside NSRec.

Each test class only names its backbone and the number of layer outputs L+1 under the test config
(``n_layers`` = 2); the tests run on the planted dataset of ``conftest.py``.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar

import pytest
import torch
from recbole.data.interaction import Interaction

from recbole_neggen.model.nsrec import NSRec
from recbole_neggen.sampling import STRATEGIES
from recbole_neggen.trainer import Trainer
from recbole_neggen.utils import create_dataset, data_preparation

Built = Any  # conftest.Built: config, dataset, train loader, model (conftest modules are not importable)


def train_epochs(built: Built, epochs: int, lr: float = 0.05) -> list[float]:
    """Plain Adam loop over the candidate loader, calling the per-epoch hook; returns epoch losses."""
    model = built.model
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    model.train()
    for epoch in range(epochs):
        model.on_epoch_start(epoch)
        total = 0.0
        for batch in built.train:
            optimizer.zero_grad()
            loss = model.calculate_loss(batch)
            loss.backward()
            optimizer.step()
            total += loss.item()
        losses.append(total)
    return losses


def full_scores(built: Built, users: torch.Tensor) -> torch.Tensor:
    """``full_sort_predict`` in eval mode, reshaped to ``[len(users), n_items]``."""
    built.model.eval()
    with torch.no_grad():
        scores = built.model.full_sort_predict(Interaction({built.dataset.uid_field: users}))
    return scores.reshape(len(users), built.dataset.item_num)


class BackboneContract:
    """Behaviour every backbone must show; subclasses set ``backbone`` and ``n_outputs`` (L+1)."""

    backbone: ClassVar[str]
    n_outputs: ClassVar[int]

    def test_layer_embeddings_have_contract_shape_and_are_finite(self, build: Callable[..., Built]) -> None:
        built = build(self.backbone)
        d = built.model.backbone.embedding_size
        assert d == 16
        for mode in (True, False):
            built.model.train(mode)
            users, items = built.model.backbone.layer_embeddings()
            assert users.shape == (built.dataset.user_num, self.n_outputs, d)
            assert items.shape == (built.dataset.item_num, self.n_outputs, d)
            assert torch.isfinite(users).all() and torch.isfinite(items).all()

    def test_gradients_reach_every_backbone_parameter(self, build: Callable[..., Built]) -> None:
        built = build(self.backbone)
        built.model.train()
        built.model.calculate_loss(built.batch()).backward()
        params = dict(built.model.backbone.named_parameters())
        assert params
        for name, param in params.items():
            assert param.grad is not None and param.grad.abs().sum() > 0, f"no gradient reaches {name}"

    def test_full_sort_predict_agrees_with_predict(self, build: Callable[..., Built]) -> None:
        built = build(self.backbone)
        train_epochs(built, 1)
        users = torch.tensor([1, 2, 5, 33])
        full = full_scores(built, users)
        n_items = built.dataset.item_num
        pairs = Interaction({built.dataset.uid_field: users.repeat_interleave(n_items),
                             built.dataset.iid_field: torch.arange(n_items).repeat(len(users))})
        with torch.no_grad():
            single = built.model.predict(pairs).reshape(len(users), n_items)
        torch.testing.assert_close(full, single)

    def test_reused_score_buffer_gives_the_same_scores(self, build: Callable[..., Built]) -> None:
        built = build(self.backbone)
        train_epochs(built, 1)
        batches = [torch.tensor([1, 2, 5, 33]), torch.tensor([7, 3])]  # the last batch of an epoch is shorter
        fresh = [full_scores(built, users) for users in batches]
        assert fresh[0].data_ptr() != full_scores(built, batches[0]).data_ptr()  # outside: new storage per call
        with built.model.reused_scores():
            reused = [full_scores(built, users) for users in batches]
            assert reused[0].data_ptr() == reused[1].data_ptr()  # one buffer, overwritten batch by batch
            torch.testing.assert_close(reused[1], fresh[1], rtol=0, atol=0)
            torch.testing.assert_close(full_scores(built, batches[0]), fresh[0], rtol=0, atol=0)
        assert built.model._score_buffer is None  # released with the context

    @pytest.mark.parametrize("strategy", STRATEGIES.names())
    def test_loss_is_a_finite_scalar_for_every_strategy(self, build: Callable[..., Built], strategy: str) -> None:
        built = build(self.backbone, strategy)
        built.model.train()
        built.model.on_epoch_start(0)
        batch = built.batch()
        assert batch["neg_cand"].shape == (len(batch), built.model.strategy.n_candidates)
        loss = built.model.calculate_loss(batch)
        assert loss.dim() == 0 and torch.isfinite(loss)
        loss.backward()
        grads = [p.grad for p in built.model.backbone.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)

    def test_deterministic_under_a_seed(self, build: Callable[..., Built]) -> None:
        first, second = build(self.backbone, "dns"), build(self.backbone, "dns")
        other = build(self.backbone, "dns", seed=8)
        runs = [train_epochs(b, 2) for b in (first, second, other)]
        assert runs[0] == runs[1]
        users = torch.arange(1, 6)
        torch.testing.assert_close(full_scores(first, users), full_scores(second, users), rtol=0, atol=0)
        assert not torch.equal(full_scores(first, users), full_scores(other, users))

    def test_learns_a_planted_preference(self, build: Callable[..., Built]) -> None:
        """After 8 epochs, users rank the unseen items of their group above the other group's items: the
        mean pairwise AUC (unseen own-group items vs other-group items) exceeds 0.9 (about 0.5 untrained)."""
        built = build(self.backbone)
        losses = train_epochs(built, 8)
        assert losses[-1] < losses[0]
        dataset = built.dataset
        in_a = torch.zeros(dataset.item_num, dtype=torch.bool)
        in_a[torch.from_numpy(built.group_a_items())] = True
        seen = torch.zeros(dataset.user_num, dataset.item_num, dtype=torch.bool)
        seen[dataset.inter_feat[dataset.uid_field], dataset.inter_feat[dataset.iid_field]] = True
        users = torch.arange(1, dataset.user_num)
        scores = full_scores(built, users)
        aucs = []
        for row, user in enumerate(users.tolist()):
            fan_of_a = bool(in_a[seen[user]].all())
            liked = (in_a if fan_of_a else ~in_a) & ~seen[user]
            liked[0] = False
            other = ~in_a if fan_of_a else in_a.clone()
            other[0] = False
            s = scores[row]
            aucs.append(float((s[liked][:, None] > s[other][None, :]).float().mean()))
        assert sum(aucs) / len(aucs) > 0.9, aucs


class TestMF(BackboneContract):
    backbone = "mf"
    n_outputs = 1


class TestLightGCN(BackboneContract):
    backbone = "lightgcn"
    n_outputs = 3


class TestVBPR(BackboneContract):
    backbone = "vbpr"
    n_outputs = 1


class TestFREEDOM(BackboneContract):
    backbone = "freedom"
    n_outputs = 3


def test_trainer_evaluates_through_the_reused_buffer_with_the_same_metrics(build: Callable[..., Built],
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    built = build("lightgcn", eval_batch_size=100, topk=[5, 10])  # 3 users per evaluation batch
    train_epochs(built, 1)
    _, _, test = data_preparation(built.config, create_dataset(built.config))
    trainer = Trainer(built.config, built.model)
    seen: list[bool] = []
    predict = built.model.full_sort_predict
    monkeypatch.setattr(built.model, "full_sort_predict", lambda x: (seen.append(built.model._reuse_scores), predict(x))[1])
    reused = trainer.evaluate(test, load_best_model=False)
    assert len(seen) == 14 and all(seen)  # 40 test users
    monkeypatch.setattr(NSRec, "reused_scores", None)  # the trainer then falls back to fresh score blocks
    seen.clear()
    fresh = trainer.evaluate(test, load_best_model=False)
    assert len(seen) == 14 and not any(seen)
    assert reused == fresh and reused["recall@10"] > 0
