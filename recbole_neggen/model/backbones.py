"""Backbones: modules that turn ids (and item features) into layer-wise user / item embeddings.

Contract (every strategy works with every backbone through it alone):
    layer_embeddings() -> (users [n_users, L+1, d], items [n_items, L+1, d])
Layer 0 is the ID (or ID + feature) embedding that the L2 penalty applies to; mean over layers is the
representation that scores (inner product). MF has L = 0.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
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


BACKBONES: Registry[type[Backbone]] = Registry("backbone")


def normalized_adjacency(dataset: Any) -> Tensor:
    """Symmetric-normalised user-item bipartite adjacency ``D^-1/2 A D^-1/2`` as sparse CSR
    ``[n_users + n_items, n_users + n_items]`` from the training interactions (users first)."""
    inter = dataset.inter_matrix(form="coo").astype(np.float32)
    n_users, n_items = inter.shape
    adj = sp.bmat([[None, inter], [inter.T, None]], format="csr")
    adj.data[:] = 1.0  # duplicate pairs count once
    degree = np.asarray(adj.sum(axis=1)).ravel()
    inv_sqrt = np.zeros_like(degree)
    inv_sqrt[degree > 0] = degree[degree > 0] ** -0.5
    norm = sp.diags(inv_sqrt) @ adj @ sp.diags(inv_sqrt)
    norm = norm.tocsr().astype(np.float32)
    return torch.sparse_csr_tensor(
        torch.from_numpy(norm.indptr).long(), torch.from_numpy(norm.indices).long(),
        torch.from_numpy(norm.data), size=(n_users + n_items, n_users + n_items), check_invariants=False,
    )


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
        ego = torch.cat([self.user_embedding.weight, self.item_embedding.weight], dim=0)  # [n_u + n_i, d]
        layers = [ego]
        for _ in range(self.n_layers):
            ego = torch.sparse.mm(self.adjacency, ego)
            layers.append(ego)
        stacked = torch.stack(layers, dim=1)  # [n_u + n_i, L+1, d]
        return stacked[: self.n_users], stacked[self.n_users:]
