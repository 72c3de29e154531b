"""VBPR and FREEDOM internals against independent references (dense brute force, the lead's scipy adjacency)."""
from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from recbole_neggen.model import multimodal
from recbole_neggen.model.backbones import layer_stack, normalized_adjacency, propagate
from recbole_neggen.model.multimodal import (
    FREEDOMArgs,
    item_features,
    knn_graph,
    mixed_knn_graph,
    modality_weights,
    top_k_lowest_id,
)

Built = Any  # conftest.Built


def brute_knn(features: torch.Tensor, k: int) -> torch.Tensor:
    """Dense reference: row i (i >= 1) has 1/k at its k most cosine-similar items j >= 1, ties to lower j."""
    x = features.double()
    n = x.shape[0]
    dense = torch.zeros(n, n, dtype=torch.float64)
    for i in range(1, n):
        sims = [(float(F.cosine_similarity(x[i], x[j], dim=0)), j) for j in range(1, n)]
        for _, j in sorted(sims, key=lambda t: (-t[0], t[1]))[:k]:
            dense[i, j] = 1.0 / k
    return dense


def as_dataset(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> SimpleNamespace:
    """Minimal stand-in for ``normalized_adjacency``: only ``inter_matrix(form="coo")``."""
    coo = sp.coo_matrix((np.ones(len(users), np.float32), (users, items)), shape=(n_users, n_items))
    return SimpleNamespace(inter_matrix=lambda form: coo)


def config_of(**values: Any) -> defaultdict:
    """A RecBole-like config: unset keys read as ``None``."""
    return defaultdict(lambda: None, values)


# ----------------------------------------------------------------------------- features
def test_item_features_errors_name_dataset_and_modality() -> None:
    with pytest.raises(ValueError, match="'toy'.*no `item_features`"):
        item_features(SimpleNamespace(dataset_name="toy", item_num=4), "vbpr")
    with pytest.raises(ValueError, match="'freedom' needs at least one item modality.*'toy'"):
        item_features(SimpleNamespace(dataset_name="toy", item_num=4, item_features={}), "freedom")
    with pytest.raises(ValueError, match="modality 'text'.*n_items=4"):
        item_features(SimpleNamespace(dataset_name="toy", item_num=4, item_features={"text": torch.zeros(3, 2)}),
                      "vbpr")
    bad = torch.zeros(4, 2)
    bad[2, 1] = torch.nan
    toy = SimpleNamespace(dataset_name="toy", item_num=4, item_features={"text": torch.zeros(4, 2), "image": bad})
    with pytest.raises(ValueError, match="modality 'image'.*non-finite"):
        item_features(toy, "vbpr")


def test_item_features_sorted_by_modality() -> None:
    feats = {"text": torch.ones(3, 2), "image": torch.zeros(3, 1, dtype=torch.float64)}
    out = item_features(SimpleNamespace(dataset_name="toy", item_num=3, item_features=feats), "vbpr")
    assert list(out) == ["image", "text"] and out["image"].dtype == torch.float32


# ----------------------------------------------------------------------------- VBPR
def test_vbpr_item_is_id_half_then_projected_features(build: Callable[..., Built]) -> None:
    built = build("vbpr")
    backbone = built.model.backbone
    feats = built.dataset.item_features
    assert backbone.modalities == ["image", "text"]
    raw = torch.cat([feats["image"], feats["text"]], dim=1)  # [n_items, 5 + 8]
    linear = backbone.item_projection.linear
    users, items = backbone.layer_embeddings()
    expected = torch.cat([backbone.item_embedding.weight, raw @ linear.weight.T], dim=1)
    torch.testing.assert_close(items[:, 0], expected)
    torch.testing.assert_close(users[:, 0], backbone.user_embedding.weight)
    assert backbone.item_embedding.weight.shape[1] == linear.out_features == 8


def test_vbpr_rejects_odd_embedding_size(build: Callable[..., Built]) -> None:
    with pytest.raises(ValueError, match="'vbpr'.*even.*got 15"):
        build("vbpr", embedding_size=15)


def test_checkpoint_holds_no_raw_features(build: Callable[..., Built]) -> None:
    for backbone in ("vbpr", "freedom"):
        state = build(backbone).model.state_dict()
        assert not [k for k in state if "features" in k or "adjacency" in k or "graph" in k], list(state)


# ----------------------------------------------------------------------------- kNN graph
def test_top_k_lowest_id_matches_a_stable_sort_on_heavy_ties() -> None:
    scores = torch.randint(0, 4, (50, 17), generator=torch.Generator().manual_seed(1)).float()
    for k in (1, 3, 17):
        expected = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k].sort(dim=1).values
        assert torch.equal(top_k_lowest_id(scores, k), expected)


def test_knn_graph_matches_dense_brute_force_in_any_block_size(monkeypatch: pytest.MonkeyPatch) -> None:
    feats = torch.randn(23, 6, generator=torch.Generator().manual_seed(3))
    feats[0] = 0
    reference = brute_knn(feats, 4)
    whole = knn_graph(feats, 4)
    monkeypatch.setattr(multimodal, "KNN_BLOCK_CELLS", 2 * 23)  # two rows per block
    blocked = knn_graph(feats, 4)
    torch.testing.assert_close(whole.to_dense().double(), reference)
    torch.testing.assert_close(blocked.to_dense(), whole.to_dense(), rtol=0, atol=0)


def test_knn_graph_includes_self_breaks_ties_by_id_and_skips_pad() -> None:
    feats = torch.zeros(10, 3)
    for i in range(1, 10):
        feats[i, i % 3] = 1.0  # items with equal i % 3 are identical: exact ties
    dense = knn_graph(feats, 2).to_dense()
    assert dense[0].sum() == 0 and dense[:, 0].sum() == 0
    assert dense[1].nonzero().flatten().tolist() == [1, 4]
    assert dense[7].nonzero().flatten().tolist() == [1, 4]  # tie among 1, 4, 7: lowest ids win
    assert dense[3].nonzero().flatten().tolist() == [3, 6]
    torch.testing.assert_close(dense[1:].sum(1), torch.ones(9))


def test_knn_k_must_leave_room_for_neighbours() -> None:
    with pytest.raises(ValueError, match=r"knn_k must lie in \[1, n_items - 1 = 4\], got 5"):
        knn_graph(torch.randn(5, 2), 5)


def test_modality_weights() -> None:
    assert modality_weights(["image", "text"], 0.1) == {"image": 0.1, "text": 0.9}
    assert modality_weights(["audio", "image", "text"], 0.2) == {"audio": 0.4, "image": 0.2, "text": 0.4}
    assert modality_weights(["text"], 0.1) == {"text": 1.0}
    assert modality_weights(["image"], 0.1) == {"image": 1.0}
    assert modality_weights(["audio", "text"], 0.1) == {"audio": 0.5, "text": 0.5}


def test_mixed_graph_is_the_weighted_sum_of_modality_graphs() -> None:
    gen = torch.Generator().manual_seed(0)
    feats = {"image": torch.randn(15, 4, generator=gen), "text": torch.randn(15, 7, generator=gen)}
    mixed = mixed_knn_graph(feats, 3, 0.1).to_dense().double()
    expected = 0.1 * brute_knn(feats["image"], 3) + 0.9 * brute_knn(feats["text"], 3)
    torch.testing.assert_close(mixed, expected)
    torch.testing.assert_close(mixed[1:].sum(1), torch.ones(14, dtype=torch.float64))


# ----------------------------------------------------------------------------- user-item graph
def test_normalized_adjacency_equals_dense_reference(build: Callable[..., Built]) -> None:
    dataset = build("mf").dataset
    r = (dataset.inter_matrix(form="csr").toarray() > 0).astype(np.float64)  # [n_users, n_items]
    n_users, n_items = r.shape
    a = np.zeros((n_users + n_items, n_users + n_items))
    a[:n_users, n_users:], a[n_users:, :n_users] = r, r.T
    degree = a.sum(1)
    inv = np.where(degree > 0, degree, 1.0) ** -0.5 * (degree > 0)
    reference = torch.from_numpy(inv[:, None] * a * inv[None, :]).float()
    torch.testing.assert_close(normalized_adjacency(dataset).to_dense(), reference)


@pytest.mark.parametrize("symmetric", [True, False])
def test_propagate_matches_dense_product_and_gradient(symmetric: bool) -> None:
    gen = torch.Generator().manual_seed(0)
    dense = torch.rand(7, 7, generator=gen, dtype=torch.float64) * (torch.rand(7, 7, generator=gen) < 0.4)
    dense = dense + dense.T if symmetric else dense
    x = torch.randn(7, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(7, 3, generator=gen, dtype=torch.float64)
    a = dense.to_sparse_csr()
    out = propagate(a, x) if symmetric else propagate(a, x, dense.T.to_sparse_csr())
    (grad,) = torch.autograd.grad((out * weight).sum(), x)
    torch.testing.assert_close(out, dense @ x)
    torch.testing.assert_close(grad, dense.T @ weight)


@pytest.mark.parametrize("n_layers", [0, 1, 3])
@pytest.mark.parametrize("used", ["both", "items"])
def test_layer_stack_matches_dense_powers_and_gradient(n_layers: int, used: str) -> None:
    gen = torch.Generator().manual_seed(n_layers)
    n_users, n_items, d = 4, 5, 3
    r = torch.rand(n_users, n_items, generator=gen, dtype=torch.float64) * (torch.rand(n_users, n_items, generator=gen) < 0.5)
    dense = torch.zeros(n_users + n_items, n_users + n_items, dtype=torch.float64)
    dense[:n_users, n_users:], dense[n_users:, :n_users] = r, r.T
    user_w, item_w = (torch.randn(n, d, generator=gen, dtype=torch.float64, requires_grad=True) for n in (n_users, n_items))
    weights = [torch.randn(n, n_layers + 1, d, generator=gen, dtype=torch.float64) for n in (n_users, n_items)]

    def loss(users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return (items * weights[1]).sum() + ((users * weights[0]).sum() if used == "both" else 0.0)

    users, items = layer_stack(dense.to_sparse_csr(), user_w, item_w, n_layers)
    grads = torch.autograd.grad(loss(users, items), (user_w, item_w))
    ego = torch.cat([user_w, item_w])
    layers = [ego]
    for _ in range(n_layers):
        layers.append(dense @ layers[-1])
    ref_users, ref_items = torch.stack(layers, 1).split([n_users, n_items])
    ref_grads = torch.autograd.grad(loss(ref_users, ref_items), (user_w, item_w))
    torch.testing.assert_close((users, items), (ref_users, ref_items))
    torch.testing.assert_close(grads, ref_grads)


def test_freedom_layers_follow_the_documented_equations(build: Callable[..., Built]) -> None:
    built = build("freedom")
    backbone = built.model.backbone
    backbone.eval()
    dataset = built.dataset
    feats = dataset.item_features
    graph = 0.1 * brute_knn(feats["image"], 3) + 0.9 * brute_knn(feats["text"], 3)
    adjacency = normalized_adjacency(dataset).to_dense().double()
    e_u = backbone.user_embedding.weight.detach().double().requires_grad_()
    e_i = backbone.item_embedding.weight.detach().double().requires_grad_()
    h = graph @ e_i
    ego = torch.cat([e_u, e_i])
    layers = [ego]
    for _ in range(2):
        ego = adjacency @ ego
        layers.append(ego)
    stacked = torch.stack(layers, 1)
    users, items = backbone.layer_embeddings()
    torch.testing.assert_close(users.double(), stacked[: dataset.user_num], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(items.double(), stacked[dataset.user_num:] + h[:, None], rtol=1e-5, atol=1e-6)
    weight = torch.randn(items.shape, generator=torch.Generator().manual_seed(0))  # gradients: the graphs' transposes
    grads = torch.autograd.grad((items * weight).sum() + users.sum(), [backbone.user_embedding.weight,
                                                                      backbone.item_embedding.weight])
    reference = torch.autograd.grad(((stacked[dataset.user_num:] + h[:, None]) * weight.double()).sum()
                                    + stacked[: dataset.user_num].sum(), [e_u, e_i])
    for got, want in zip(grads, reference):
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-6)


def kept_edges(adjacency: torch.Tensor, n_users: int) -> set[tuple[int, int]]:
    coo = adjacency.to_sparse_coo().coalesce().indices()
    return {(int(r), int(c) - n_users) for r, c in coo.T.tolist() if r < n_users}


def test_freedom_prunes_per_epoch_deterministically_and_renormalises(build: Callable[..., Built]) -> None:
    built = build("freedom")
    backbone = built.model.backbone
    n_users, n_items = built.dataset.user_num, built.dataset.item_num
    n_edges = len(backbone.edge_users)
    assert n_edges == 240 and backbone.n_keep == 48
    epoch0, again, epoch1 = backbone.pruned_adjacency(0), backbone.pruned_adjacency(0), backbone.pruned_adjacency(1)
    torch.testing.assert_close(epoch0.to_dense(), again.to_dense(), rtol=0, atol=0)
    torch.testing.assert_close(backbone.train_adjacency.to_dense(), epoch0.to_dense(), rtol=0, atol=0)
    edges0, edges1 = kept_edges(epoch0, n_users), kept_edges(epoch1, n_users)
    assert len(edges0) == len(edges1) == backbone.n_keep and edges0 != edges1
    all_edges = set(zip(backbone.edge_users.tolist(), backbone.edge_items.tolist()))
    assert edges0 <= all_edges
    users, items = map(np.asarray, zip(*sorted(edges0)))
    reference = normalized_adjacency(as_dataset(users, items, n_users, n_items))
    torch.testing.assert_close(epoch0.to_dense(), reference.to_dense())
    backbone.on_epoch_start(1)
    torch.testing.assert_close(backbone.train_adjacency.to_dense(), epoch1.to_dense(), rtol=0, atol=0)


def test_freedom_pruning_keeps_low_degree_edges_more_often(build: Callable[..., Built]) -> None:
    backbone = build("freedom").model.backbone
    n_users = backbone.n_users
    index = {e: k for k, e in enumerate(zip(backbone.edge_users.tolist(), backbone.edge_items.tolist()))}
    counts = torch.zeros(len(index))
    for epoch in range(200):
        for edge in kept_edges(backbone.pruned_adjacency(epoch), n_users):
            counts[index[edge]] += 1
    order = backbone.edge_prob.argsort()
    quarter = len(order) // 4
    assert counts[order[-quarter:]].mean() > 1.2 * counts[order[:quarter]].mean()


def test_freedom_ranks_on_the_full_graph_and_trains_on_the_pruned_one(build: Callable[..., Built]) -> None:
    backbone = build("freedom").model.backbone
    backbone.eval()
    full_users, _ = backbone.layer_embeddings()
    backbone.train()
    pruned_users, _ = backbone.layer_embeddings()
    assert not torch.allclose(full_users[:, 1:], pruned_users[:, 1:])
    torch.testing.assert_close(full_users[:, 0], pruned_users[:, 0])


def test_freedom_without_dropout_trains_on_the_full_graph(build: Callable[..., Built]) -> None:
    backbone = build("freedom", edge_dropout=0.0).model.backbone
    backbone.on_epoch_start(3)
    torch.testing.assert_close(backbone.train_adjacency.to_dense(), backbone.full_adjacency.to_dense(), rtol=0, atol=0)


def test_freedom_args_are_validated_with_key_names() -> None:
    assert FREEDOMArgs.from_config(config_of()) == FREEDOMArgs()
    assert FREEDOMArgs.from_config(config_of(knn_k=5, edge_dropout=0.9)).knn_k == 5
    with pytest.raises(ValueError, match="'freedom'.*knn_k must be int >= 1, got 0"):
        FREEDOMArgs.from_config(config_of(knn_k=0))
    with pytest.raises(ValueError, match=r"edge_dropout must be float in \[0.0, 1.0\], got 1.5"):
        FREEDOMArgs.from_config(config_of(edge_dropout=1.5))
    with pytest.raises(ValueError, match="n_mm_layers must be int"):
        FREEDOMArgs.from_config(config_of(n_mm_layers=True))


# ----------------------------------------------------------------------------- aux loss
def test_freedom_aux_loss_is_off_by_default(build: Callable[..., Built]) -> None:
    backbone = build("freedom").model.backbone
    assert len(backbone.projections) == 0
    assert backbone.aux_loss(torch.zeros(2, 16), torch.tensor([1, 2]), torch.tensor([3, 4])) is None


def test_freedom_aux_loss_is_weighted_modality_bpr(build: Callable[..., Built]) -> None:
    backbone = build("freedom", mm_aux_weight=0.5).model.backbone
    assert sorted(backbone.projections) == ["image", "text"]
    gen = torch.Generator().manual_seed(0)
    user = torch.randn(4, 16, generator=gen, requires_grad=True)
    pos, neg = torch.tensor([1, 2, 3, 4]), torch.tensor([5, 6, 7, 8])
    layerwise = torch.tensor([[5, 9, 9], [6, 9, 9], [7, 9, 9], [8, 9, 9]])
    expected = expected_layer = 0.0
    for name, proj in backbone.projections.items():
        x = backbone.projections[name].features
        p, n = proj.linear(x[pos]), proj.linear(x[neg])
        expected = expected + F.softplus((user * n).sum(-1) - (user * p).sum(-1)).mean()
        n_layer = proj.linear(x[layerwise]).mean(1)
        expected_layer = expected_layer + F.softplus((user * n_layer).sum(-1) - (user * p).sum(-1)).mean()
    loss = backbone.aux_loss(user, pos, neg)
    torch.testing.assert_close(loss, 0.5 * expected)
    torch.testing.assert_close(backbone.aux_loss(user, pos, layerwise), 0.5 * expected_layer)
    loss.backward()
    for name, param in backbone.projections.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert user.grad is not None
