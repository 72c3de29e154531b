"""Multi-modal backbones: VBPR and FREEDOM, built on the item features of a ``MultiModalDataset``.

Both read ``dataset.item_features``: ``{modality: FloatTensor [n_items, f_m]}`` (row 0 = [PAD], rows aligned
to RecBole ids) and work with any non-empty set of modalities (text only on Baby, text + image on the
synthetic data). Raw features are frozen, non-persistent buffers: checkpoints hold only trainable weights,
and a reloaded model takes its features from the dataset again.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from recbole_neggen.model.backbones import BACKBONES, Backbone, bipartite_adjacency, edge_norm, layer_stack, propagate
from recbole_neggen.sampling.args import param

logger = logging.getLogger(__name__)

IMAGE = "image"
"""Modality name that ``mm_image_weight`` applies to in FREEDOM's graph mixing."""

KNN_BLOCK_CELLS = 1 << 24
"""Similarity cells (rows x items, float32: 64 MiB) computed at once while building a kNN graph."""


def item_features(dataset: Any, backbone: str) -> dict[str, Tensor]:
    """The dataset's item features, checked, as float32 and sorted by modality name.

    Returns:
        ``{modality: [n_items, f_m]}`` with ``n_items = dataset.item_num`` (row 0 = [PAD]).

    Raises:
        ValueError: when the dataset has no features (or no ``item_features`` at all), a matrix has the
            wrong row count, or holds non-finite values; the message names the dataset and modality.
    """
    name = getattr(dataset, "dataset_name", type(dataset).__name__)
    features = getattr(dataset, "item_features", None)
    if features is None:
        raise ValueError(f"backbone {backbone!r} needs item features, but dataset {name!r} "
                         f"({type(dataset).__name__}) has no `item_features`; models registered in "
                         f"recbole_neggen.model.MODELS are given a MultiModalDataset")
    if not features:
        where = getattr(dataset, "dataset_path", "its data directory")
        raise ValueError(f"backbone {backbone!r} needs at least one item modality, but dataset {name!r} has "
                         f"none (no {name}.<modality>.npz in {where}); use an id-only backbone (mf, lightgcn)")
    checked: dict[str, Tensor] = {}
    for modality in sorted(features):
        feat = features[modality]
        if feat.dim() != 2 or feat.shape[0] != dataset.item_num:
            raise ValueError(f"dataset {name!r}, modality {modality!r}: item features must be "
                             f"[n_items={dataset.item_num}, dim], got {list(feat.shape)}")
        if not torch.isfinite(feat).all():
            raise ValueError(f"dataset {name!r}, modality {modality!r}: item features hold non-finite values")
        checked[modality] = feat.detach().float()
    return checked


class FeatureProjection(nn.Module):
    """Frozen item features ``x [n_items, f]`` and a trainable linear map ``W [out_dim, f]``, Xavier-normal.

    ``forward(index)`` returns ``W x[index]``: ``[n_items, out_dim]`` without an index, else
    ``[*index.shape, out_dim]``. No bias (MMRec has one): ``<u, b>`` is the same for every item of a user,
    so it cannot change a ranking or a BPR score difference.
    """

    def __init__(self, features: Tensor, out_dim: int) -> None:
        super().__init__()
        self.register_buffer("features", features, persistent=False)
        self.linear = nn.Linear(features.shape[1], out_dim, bias=False)
        nn.init.xavier_normal_(self.linear.weight)

    def forward(self, index: Tensor | None = None) -> Tensor:
        return self.linear(self.features if index is None else self.features[index])


@BACKBONES.register("vbpr")
class VBPR(Backbone):
    """VBPR (He & McAuley, AAAI 2016), as MMRec's version, with output width ``d = embedding_size``.

    Item k: ``i_k = [e_k ; W x_k]`` with an ID embedding ``e_k`` (d/2) and a projection of
    ``x_k = concat_m x_k^m`` (all modalities, sorted by name) to d/2; user ``u`` is one d-wide embedding,
    so ``<u, i_k> = <u_id, e_k> + <u_vis, W x_k>``. MMRec uses d for each half (2d in all); the d/2
    split keeps every backbone at width d for the strategies. No propagation: L = 0, outputs
    ``[n_users, 1, d]`` and ``[n_items, 1, d]``; NSRec's L2 term applies to the whole item vector, both
    halves (as MMRec's ``EmbLoss`` on ``pos_e``, ``neg_e``).
    """

    def __init__(self, config: Any, dataset: Any) -> None:
        super().__init__(config, dataset)
        self.embedding_size = int(config["embedding_size"])
        if self.embedding_size < 2 or self.embedding_size % 2:
            raise ValueError(f"backbone 'vbpr' splits embedding_size into ID and feature halves: "
                             f"it must be even and >= 2, got {self.embedding_size}")
        half = self.embedding_size // 2
        features = item_features(dataset, "vbpr")
        self.modalities = list(features)
        self.user_embedding = nn.Embedding(self.n_users, self.embedding_size)
        self.item_embedding = nn.Embedding(self.n_items, half)
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_embedding.weight)
        self.item_projection = FeatureProjection(torch.cat(list(features.values()), dim=1), half)

    def layer_embeddings(self) -> tuple[Tensor, Tensor]:
        items = torch.cat([self.item_embedding.weight, self.item_projection()], dim=1)  # [n_items, d]
        return self.user_embedding.weight.unsqueeze(1), items.unsqueeze(1)


def top_k_lowest_id(scores: Tensor, k: int) -> Tensor:
    """Columns of the k largest scores per row, ties at the k-th value going to the lowest column;
    ``[b, n]`` -> ``[b, k]`` in ascending column order. (``topk`` leaves the order of ties unspecified.)"""
    threshold = scores.topk(k, dim=1).values[:, -1:]  # [b, 1], the k-th largest value
    above = scores > threshold
    tied = scores == threshold
    room = k - above.sum(dim=1, keepdim=True)  # tied columns still needed, >= 1
    chosen = above | (tied & (tied.cumsum(dim=1, dtype=torch.int32) <= room))
    return chosen.nonzero()[:, 1].reshape(-1, k)


def knn_graph(features: Tensor, k: int, desc: str = "kNN graph") -> Tensor:
    """Row-normalised cosine kNN graph of items, computed in row blocks (never ``n_items²`` at once).

    Args:
        features: ``[n_items, f]``, row 0 = [PAD].
        k: neighbours per item; the item itself counts (its own similarity is maximal), as in FREEDOM.

    Returns:
        Sparse CSR ``[n_items, n_items]``: row i holds ``1/k`` at its k most cosine-similar items. FREEDOM
        normalises ``D^-1/2 A D^-1/2`` with row degrees, which is ``1/k`` for every entry. The [PAD] row
        is empty and [PAD] is never a neighbour. Ties go to the lower item id.
    """
    n = features.shape[0]
    if not 1 <= k <= n - 1:
        raise ValueError(f"knn_k must lie in [1, n_items - 1 = {n - 1}], got {k}")
    normed = F.normalize(features.float(), dim=1)  # [n, f]; the zero [PAD] row stays zero
    rows = max(1, KNN_BLOCK_CELLS // n)
    neighbours = []
    for start in tqdm(range(1, n, rows), desc=desc, unit="block", leave=False):
        sim = normed[start:start + rows] @ normed.T  # [b, n]
        sim[:, 0] = -torch.inf
        neighbours.append(top_k_lowest_id(sim, k))
    cols = torch.cat(neighbours).reshape(-1)  # [(n-1)·k]
    crow = torch.cat([torch.zeros(1, dtype=torch.long), torch.arange(n, dtype=torch.long) * k])  # row 0 empty
    values = torch.full((cols.numel(),), 1.0 / k)
    return torch.sparse_csr_tensor(crow, cols, values, size=(n, n), check_invariants=True)


def modality_weights(modalities: list[str], image_weight: float) -> dict[str, float]:
    """FREEDOM's mixing weights: ``image`` gets ``image_weight`` and the others share ``1 - image_weight``
    equally when both kinds are present; otherwise the modalities share 1 equally."""
    others = [m for m in modalities if m != IMAGE]
    if IMAGE in modalities and others:
        return {m: image_weight if m == IMAGE else (1.0 - image_weight) / len(others) for m in modalities}
    return {m: 1.0 / len(modalities) for m in modalities}


def mixed_knn_graph(features: Mapping[str, Tensor], k: int, image_weight: float) -> Tensor:
    """``S = Σ_m w_m S_m`` over the modalities' kNN graphs (:func:`knn_graph`, :func:`modality_weights`);
    sparse CSR ``[n_items, n_items]``, every non-[PAD] row sums to 1."""
    weights = modality_weights(list(features), image_weight)
    graphs = [knn_graph(feat, k, desc=f"kNN graph ({m})").to_sparse_coo() * weights[m] for m, feat in features.items()]
    mixed = graphs[0]
    for graph in graphs[1:]:
        mixed = mixed + graph
    return mixed.coalesce().to_sparse_csr()


@dataclass(frozen=True)
class FREEDOMArgs:
    """FREEDOM's hyperparameters (config keys of the same names; MMRec's names in brackets).

    knn_k: neighbours per item in each modality's kNN graph.
    mm_image_weight: weight of the ``image`` graph when other modalities are present.
    edge_dropout [dropout]: fraction of user-item edges pruned each training epoch (FREEDOM: 0.8 or 0.9,
        i.e. 20 % or 10 % of the edges are kept).
    n_mm_layers: propagation steps on the item-item graph.
    n_layers [n_ui_layers]: propagation steps on the user-item graph (L; the key LightGCN uses too).
    mm_aux_weight [reg_weight]: weight of the modality BPR terms of :meth:`FREEDOM.aux_loss` (0 = off).
    """

    knn_k: int = param(10, int, low=1)
    mm_image_weight: float = param(0.1, float, low=0.0, high=1.0)
    edge_dropout: float = param(0.8, float, low=0.0, high=1.0)
    n_mm_layers: int = param(1, int, low=0)
    n_layers: int = param(2, int, low=0)
    mm_aux_weight: float = param(0.0, float, low=0.0)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, f.metadata["spec"].coerce(f.name, getattr(self, f.name)))

    @classmethod
    def from_config(cls, config: Any) -> "FREEDOMArgs":
        """Read the keys from a RecBole config; unset keys (``None``) take the defaults above.

        Raises:
            ValueError: naming the key and its allowed range.
        """
        given = {f.name: config[f.name] for f in dataclasses.fields(cls) if config[f.name] is not None}
        try:
            return cls(**given)
        except ValueError as err:
            raise ValueError(f"backbone 'freedom': config key {err}") from None


@BACKBONES.register("freedom")
class FREEDOM(Backbone):
    """FREEDOM (Zhou & Shen, MM 2023): a frozen item-item kNN graph plus a pruned user-item graph.

    With ID embeddings ``E_U [n_users, d]``, ``E_I [n_items, d]`` and ``E^0 = [E_U; E_I]``:
        S       = Σ_m w_m kNN_k(cos(x^m))                   frozen item graph (:func:`mixed_knn_graph`)
        h       = S^{n_mm_layers} E_I                        [n_items, d]
        E^{l+1} = Â E^l,  l = 0..L-1                         Â = D^-1/2 A D^-1/2 of the user-item graph
        users[:, l] = E^l_U,   items[:, l] = E^l_I + h       [n, L+1, d]
    so the layer mean is FREEDOM's representation: ``ū = mean_l E^l_U``, ``ī = mean_l E^l_I + h``.
    Adding ``h`` to every item layer keeps each layer a valid item embedding for layer-wise strategies
    (MixGCF, DENS); layer 0, the one the L2 penalty applies to, is ``E_I + h``.

    Â is degree-sensitively pruned in training: :meth:`on_epoch_start` keeps
    ``max(1, round(E (1 - edge_dropout)))`` of the E training edges, drawn without replacement with probability
    ∝ ``1/sqrt(deg u · deg i)``, and renormalises on the kept edges; the draw is seeded by (seed, epoch).
    In eval mode the full graph is used. Modality projections ``P_m x^m`` exist only with
    ``mm_aux_weight > 0``, for :meth:`aux_loss`.
    """

    def __init__(self, config: Any, dataset: Any) -> None:
        super().__init__(config, dataset)
        self.args = FREEDOMArgs.from_config(config)
        self.embedding_size = int(config["embedding_size"])
        self.seed = int(config["seed"] if config["seed"] is not None else 0)
        features = item_features(dataset, "freedom")
        self.user_embedding = nn.Embedding(self.n_users, self.embedding_size)
        self.item_embedding = nn.Embedding(self.n_items, self.embedding_size)
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_embedding.weight)
        self.projections = nn.ModuleDict(
            {m: FeatureProjection(f, self.embedding_size) for m, f in features.items()}
            if self.args.mm_aux_weight > 0 else {}
        )
        item_graph = mixed_knn_graph(features, self.args.knn_k, self.args.mm_image_weight)
        self.register_buffer("item_graph", item_graph, persistent=False)
        self.register_buffer("item_graph_t", item_graph.t().to_sparse_csr(), persistent=False)  # kNN: not symmetric
        inter = dataset.inter_matrix(form="csr").tocoo()  # csr -> coo merges duplicate pairs
        users = torch.from_numpy(inter.row.astype(np.int64))
        items = torch.from_numpy(inter.col.astype(np.int64))
        self.n_keep = max(1, round(len(users) * (1.0 - self.args.edge_dropout)))
        self.register_buffer("edge_users", users, persistent=False)
        self.register_buffer("edge_items", items, persistent=False)
        self.register_buffer("edge_prob", edge_norm(users, items, self.n_users, self.n_items), persistent=False)
        self.register_buffer("full_adjacency", bipartite_adjacency(users, items, self.n_users, self.n_items),
                             persistent=False)
        self.register_buffer("train_adjacency", self.pruned_adjacency(0), persistent=False)
        logger.info("FREEDOM: item graph from %s (knn_k=%d, weights %s), %d user-item edges, %d kept per epoch",
                    list(features), self.args.knn_k, modality_weights(list(features), self.args.mm_image_weight),
                    len(users), self.n_keep)

    def pruned_adjacency(self, epoch: int) -> Tensor:
        """Normalised adjacency of the edges kept in ``epoch`` (the full graph when ``edge_dropout`` is 0)."""
        if self.args.edge_dropout == 0:
            return self.full_adjacency
        seed = int(np.random.SeedSequence([self.seed, epoch]).generate_state(1)[0])
        generator = torch.Generator(device=self.edge_prob.device).manual_seed(seed)
        keep = torch.multinomial(self.edge_prob, self.n_keep, replacement=False, generator=generator)
        return bipartite_adjacency(self.edge_users[keep], self.edge_items[keep], self.n_users, self.n_items)

    def on_epoch_start(self, epoch: int) -> None:
        """Draw this epoch's pruned user-item graph."""
        self.train_adjacency = self.pruned_adjacency(epoch)

    def layer_embeddings(self) -> tuple[Tensor, Tensor]:
        adjacency = self.train_adjacency if self.training else self.full_adjacency
        h = self.item_embedding.weight
        for _ in range(self.args.n_mm_layers):
            h = propagate(self.item_graph, h, self.item_graph_t)  # [n_items, d]
        users, items = layer_stack(adjacency, self.user_embedding.weight, self.item_embedding.weight,
                                   self.args.n_layers)
        return users, items + h.unsqueeze(1)

    def aux_loss(self, user: Tensor, pos_ids: Tensor, neg_ids: Tensor) -> Tensor | None:
        """FREEDOM's modality BPR terms: ``mm_aux_weight · Σ_m mean_B softplus(<u, P_m x_n> − <u, P_m x_p>)``.

        Args:
            user: ``[B, d]`` layer-pooled user embeddings (gradient flows into them, as in FREEDOM).
            pos_ids: ``[B]`` positive items.
            neg_ids: ``[B]`` negative items, or ``[B, L+1]`` per-layer sources of a synthetic negative
                (MixGCF, DENS): their projections are averaged over the layer axis.

        Returns:
            A scalar, or ``None`` when ``mm_aux_weight`` is 0. Unlike MMRec, raw features stay frozen.
        """
        if not self.projections:
            return None
        total = user.new_zeros(())
        for projection in self.projections.values():
            pos = projection(pos_ids)  # [B, d]
            neg = projection(neg_ids)
            neg = neg.mean(1) if neg_ids.dim() == 2 else neg
            total = total + F.softplus((user * neg).sum(-1) - (user * pos).sum(-1)).mean()
        return self.args.mm_aux_weight * total
