"""Backbones: modules that turn ids (and item features) into layer-wise user / item embeddings.

Contract (every strategy works with every backbone through it alone):
    layer_embeddings() -> (users [n_users, L+1, d], items [n_items, L+1, d])
Layer 0 is the ID (or ID + feature) embedding that the L2 penalty applies to; mean over layers is the
representation that scores (inner product). MF has L = 0.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recbole_neggen.registry import Registry


class Backbone(nn.Module):
    """Base class; subclasses set ``self.embedding_size`` (output width d) and implement ``layer_embeddings``."""

    embedding_size: int

    def __init__(self, config: Any, dataset: Any) -> None:
        super().__init__()
        self.n_users = dataset.user_num
        self.n_items = dataset.item_num

    def layer_embeddings(self) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def on_epoch_start(self, epoch: int) -> None:
        """Per-epoch hook (graph pruning, ...); nothing by default."""

    def aux_loss(self, user: Tensor, pos_ids: Tensor, neg_ids: Tensor) -> Tensor | None:
        """Backbone-specific extra loss for pooled users ``[B, d]``, positives ``[B]`` and chosen negative ids
        ``[B]`` or ``[B, L+1]`` (FREEDOM's modality BPR terms); ``None`` by default."""
        return None


BACKBONES: Registry[type[Backbone]] = Registry("backbone")


def edge_norm(users: Tensor, items: Tensor, n_users: int, n_items: int) -> Tensor:
    """``1 / sqrt(deg(u) deg(i))`` per edge of the bipartite graph with unique edges ``(users[e], items[e])``;
    ``[E]``. Degrees count the given edges only."""
    deg_users = torch.bincount(users, minlength=n_users).float()
    deg_items = torch.bincount(items, minlength=n_items).float()
    return (deg_users[users] * deg_items[items]).rsqrt()


def bipartite_adjacency(users: Tensor, items: Tensor, n_users: int, n_items: int) -> Tensor:
    """``D^-1/2 A D^-1/2`` of the user-item graph with unique edges ``(users[e], items[e])``, users first:
    sparse CSR ``[n_users + n_items, n_users + n_items]``."""
    values = edge_norm(users, items, n_users, n_items)
    rows = torch.cat([users, items + n_users])
    cols = torch.cat([items + n_users, users])
    size = (n_users + n_items, n_users + n_items)
    coo = torch.sparse_coo_tensor(torch.stack([rows, cols]), torch.cat([values, values]), size, check_invariants=True)
    return coo.coalesce().to_sparse_csr()


def csr_matmul(a: Tensor, x: Tensor) -> Tensor:
    """``A @ X`` for a sparse CSR ``a [n, m]`` and dense ``x [m, d]`` -> ``[n, d]``, without gradient.

    Computed as a weighted ``embedding_bag`` sum (row ``r`` sums ``values[e] * x[cols[e]]`` over its entries),
    about 10x faster than ``torch.sparse.mm`` on CPU at LightGCN's shapes (``benchmarks/bench_spmm.py``).
    """
    return F.embedding_bag(a.col_indices(), x.detach(), a.crow_indices(), mode="sum", per_sample_weights=a.values(),
                           include_last_offset=True)


class _FixedSparseMatmul(torch.autograd.Function):
    """``A @ X`` for a constant sparse CSR ``A``; the backward pass multiplies by a precomputed CSR ``A^T``."""

    @staticmethod
    def forward(ctx: Any, a: Tensor, a_t: Tensor, x: Tensor) -> Tensor:
        ctx.a_t = a_t
        return csr_matmul(a, x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, None, Tensor]:
        return None, None, csr_matmul(ctx.a_t, grad)


def propagate(a: Tensor, x: Tensor, a_t: Tensor | None = None) -> Tensor:
    """``A @ X`` with gradient into ``X`` only: sparse CSR ``a [n, m]``, dense ``x [m, d]`` -> ``[n, d]``.
    ``a_t`` is ``A^T`` as a sparse CSR tensor; leave it ``None`` only when ``A`` is symmetric."""
    return _FixedSparseMatmul.apply(a, a if a_t is None else a_t, x)


class _LayerStack(torch.autograd.Function):
    """:func:`layer_stack` as one autograd node: the backward pass is Horner's rule on ``Â`` (``L`` sparse
    products and in-place adds) instead of autograd's per-layer cat / split / zero-fill / accumulate."""

    @staticmethod
    def forward(ctx: Any, a: Tensor, user_weight: Tensor, item_weight: Tensor, n_layers: int) -> tuple[Tensor, Tensor]:
        n_users = user_weight.shape[0]
        users = user_weight.new_empty(n_users, n_layers + 1, user_weight.shape[1])
        items = item_weight.new_empty(item_weight.shape[0], n_layers + 1, item_weight.shape[1])
        users[:, 0], items[:, 0] = user_weight, item_weight
        ego = torch.cat([user_weight, item_weight]).detach()
        for layer in range(1, n_layers + 1):
            ego = csr_matmul(a, ego)
            users[:, layer], items[:, layer] = ego[:n_users], ego[n_users:]
        ctx.a, ctx.n_users = a, n_users
        ctx.set_materialize_grads(False)  # an unused output's gradient arrives as None, not zeros
        return users, items

    @staticmethod
    def backward(ctx: Any, grad_users: Tensor | None, grad_items: Tensor | None) -> tuple[None, Tensor, Tensor, None]:
        # dE^0 = G_0 + Â(G_1 + Â(G_2 + ...)) for the symmetric Â, G_l = layer l's gradient (users then items)
        a, n_users = ctx.a, ctx.n_users
        some = grad_users if grad_users is not None else grad_items
        grad = some.new_zeros(a.shape[0], some.shape[2])
        for layer in range(some.shape[1] - 1, -1, -1):
            if layer < some.shape[1] - 1:
                grad = csr_matmul(a, grad)
            if grad_users is not None:
                grad[:n_users] += grad_users[:, layer]
            if grad_items is not None:
                grad[n_users:] += grad_items[:, layer]
        return None, grad[:n_users], grad[n_users:], None


def layer_stack(a: Tensor, user_weight: Tensor, item_weight: Tensor, n_layers: int) -> tuple[Tensor, Tensor]:
    """LightGCN's layer outputs ``E^l = Â^l E^0``, l = 0..L, with ``E^0 = [user_weight; item_weight]`` and a
    symmetric sparse CSR ``a = Â [n_users + n_items, n_users + n_items]``: users ``[n_users, L+1, d]``, items
    ``[n_items, L+1, d]``, with gradient into both weights."""
    return _LayerStack.apply(a, user_weight, item_weight, n_layers)


def normalized_adjacency(dataset: Any) -> Tensor:
    """:func:`bipartite_adjacency` of a RecBole dataset's training interactions (duplicate pairs once)."""
    inter = dataset.inter_matrix(form="coo").tocsr().tocoo()  # sums duplicates into one entry
    return bipartite_adjacency(torch.from_numpy(inter.row).long(), torch.from_numpy(inter.col).long(),
                               *inter.shape)


@BACKBONES.register("mf")
class MF(Backbone):
    """Matrix factorisation: ID embeddings only (L = 0), N(0, 0.01^2)-free Xavier init as RecBole's BPR."""

    def __init__(self, config: Any, dataset: Any) -> None:
        super().__init__(config, dataset)
        self.embedding_size = int(config["embedding_size"])
        self.user_embedding = nn.Embedding(self.n_users, self.embedding_size)
        self.item_embedding = nn.Embedding(self.n_items, self.embedding_size)
        nn.init.xavier_normal_(self.user_embedding.weight)
        nn.init.xavier_normal_(self.item_embedding.weight)

    def layer_embeddings(self) -> tuple[Tensor, Tensor]:
        return self.user_embedding.weight.unsqueeze(1), self.item_embedding.weight.unsqueeze(1)


@BACKBONES.register("lightgcn")
class LightGCN(Backbone):
    """LightGCN (He et al., SIGIR 2020): ``E^{l+1} = Â E^l`` on the normalised bipartite graph, l = 0..L-1,
    with ``E^0`` the ID embeddings; outputs every layer ``[n, L+1, d]`` (``n_layers`` = L)."""

    def __init__(self, config: Any, dataset: Any) -> None:
        super().__init__(config, dataset)
        self.embedding_size = int(config["embedding_size"])
        self.n_layers = int(config["n_layers"] if config["n_layers"] is not None else 2)
        if self.n_layers < 0:
            raise ValueError(f"n_layers must be >= 0, got {self.n_layers}")
        self.user_embedding = nn.Embedding(self.n_users, self.embedding_size)
        self.item_embedding = nn.Embedding(self.n_items, self.embedding_size)
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_embedding.weight)
        self.register_buffer("adjacency", normalized_adjacency(dataset), persistent=False)

    def layer_embeddings(self) -> tuple[Tensor, Tensor]:
        return layer_stack(self.adjacency, self.user_embedding.weight, self.item_embedding.weight, self.n_layers)
