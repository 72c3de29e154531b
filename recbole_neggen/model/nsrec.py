"""NSRec: any backbone trained with BPR against negatives chosen by any strategy (RNS, DNS, MixGCF, ...)."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from recbole.model.abstract_recommender import GeneralRecommender
from recbole.utils import InputType
from torch import Tensor

from recbole_neggen.data.dataloader import NEG_CAND
from recbole_neggen.model import MODELS
from recbole_neggen.model.backbones import BACKBONES, Backbone
from recbole_neggen.sampling import Selection
from recbole_neggen.sampling.base import chosen_rows, index_rows


@dataclass(frozen=True)
class LossTerms:
    """What the last ``calculate_loss`` contrasted: user ``[B, L+1, d]``, positive ``[B, L+1, d]`` and the
    selection whose ``neg`` ``[B, L+1, d]`` entered the loss (in its autograd graph; for diagnostics)."""

    user: Tensor
    pos: Tensor
    selection: Selection


@MODELS.register("NSRec")
class NSRec(GeneralRecommender):
    """Backbone (``backbone``: mf | lightgcn | vbpr | freedom) + negative strategy (``neg_strategy``).

    Per batch of positives (u, i) with candidates ``neg_cand [B, C]``:
        U, I = backbone.layer_embeddings()               [n_users, L+1, d], [n_items, L+1, d]
        u, p, c = U[u], I[i], I[neg_cand]                [B, L+1, d], [B, L+1, d], [B, C, L+1, d]
        n = strategy.choose(u, p, I, neg_cand)          [B, L+1, d]  (no gradient, in row blocks),
            rebuilt with gradient from the chosen rows of I (strategy.finish)
        L = mean softplus(<ū, n̄> − <ū, p̄>) + reg_weight·(‖u₀‖² + ‖p₀‖² + ‖n₀‖²)/(2B) + strategy aux + backbone aux
    with x̄ the mean over layers and x₀ layer 0. Scores for ranking are <ū, ī>.
    """

    input_type = InputType.PAIRWISE
    uses_candidates = True

    def __init__(self, config: Any, dataset: Any) -> None:
        super().__init__(config, dataset)
        self.backbone: Backbone = BACKBONES.get(config["backbone"] or "lightgcn")(config, dataset)
        self.strategy = config.args.build_strategy(self.backbone.embedding_size)
        self.reg_weight = float(config["reg_weight"] if config["reg_weight"] is not None else 1e-4)
        self.generator = torch.Generator().manual_seed(int(config["seed"]))
        self._cache: tuple[Tensor, Tensor] | None = None
        self._items_t: Tensor | None = None  # eval: contiguous [d, n_items] (a transposed view is ~25% slower)
        self._score_buffer: Tensor | None = None  # [rows, n_items], only inside reused_scores()
        self._reuse_scores = False
        self._epoch_stats: dict[str, float] = {}
        self.last_terms: LossTerms | None = None

    def train(self, mode: bool = True) -> "NSRec":
        self._cache, self._items_t = None, None
        return super().train(mode)

    def on_epoch_start(self, epoch: int) -> None:
        self.backbone.on_epoch_start(epoch)
        self._epoch_stats = {"ahns_clamped": 0.0}

    def epoch_log(self) -> dict[str, float]:
        return dict(self._epoch_stats)

    def _negative(self, user: Tensor, pos: Tensor, table: Tensor, cand_ids: Tensor, rows: Callable[[Tensor], Tensor],
                  **extra: Tensor) -> Selection:
        """The strategy's negative among the rows ``cand_ids [B, M]`` of ``table [n_items, L+1, d]``. A strategy
        that needs every candidate's gradient (``choice_input: grad``) selects on all of them; any other chooses
        without gradient, in row blocks, and builds the negative from ``rows(ids)`` ``[B, L+1, d]``: the chosen
        ids' rows, re-gathered with gradient. ``extra`` goes to the strategy (``neggen``'s generated negative)."""
        if self.strategy.choice_input == "grad":
            return self.strategy.select(user, pos, index_rows(table, cand_ids), self.generator, **extra)
        selection = self.strategy.choose(user, pos, table, cand_ids, self.generator, **extra)
        return self.strategy.finish(selection, user, pos, rows(selection.item_ids(cand_ids)), **extra)

    def calculate_loss(self, interaction: Any) -> Tensor:
        users_all, items_all = self.backbone.layer_embeddings()
        user = index_rows(users_all, interaction[self.USER_ID])
        pos = index_rows(items_all, interaction[self.ITEM_ID])
        cand_ids = interaction[NEG_CAND]
        selection = self._negative(user, pos, items_all, cand_ids, lambda ids: chosen_rows(items_all, ids))
        self.last_terms = LossTerms(user, pos, selection)
        u, p, n = user.mean(1), pos.mean(1), selection.neg.mean(1)
        loss = F.softplus((u * n).sum(-1) - (u * p).sum(-1)).mean()
        reg = (user[:, 0].pow(2).sum() + pos[:, 0].pow(2).sum() + selection.neg[:, 0].pow(2).sum()) / (2 * len(u))
        loss = loss + self.reg_weight * reg
        for aux in (selection.aux_loss, self.backbone.aux_loss(u, interaction[self.ITEM_ID], selection.item_ids(cand_ids))):
            if aux is not None:
                loss = loss + aux
        if self._epoch_stats:
            self._epoch_stats["ahns_clamped"] += float(selection.clamped)
        return loss

    def pooled(self) -> tuple[Tensor, Tensor]:
        """Mean-over-layer user / item representations ``[n_users, d]``, ``[n_items, d]`` (cached in eval)."""
        if self._cache is None or self.training:
            users_all, items_all = self.backbone.layer_embeddings()
            cache = (users_all.mean(1), items_all.mean(1))
            if self.training:
                return cache
            self._cache = cache
        return self._cache

    def predict(self, interaction: Any) -> Tensor:
        users, items = self.pooled()
        return (users[interaction[self.USER_ID]] * items[interaction[self.ITEM_ID]]).sum(-1)

    @contextmanager
    def reused_scores(self) -> Iterator[None]:
        """Within this context, eval-mode :meth:`full_sort_predict` writes every batch's scores into one
        buffer, so each call overwrites the scores the previous call returned. For an evaluation loop that
        consumes a batch's scores before asking for the next one (RecBole's; its collector clones what it
        keeps). One buffer instead of a fresh ``[rows, n_items]`` block per batch, of which two were alive
        at a time: a Baby pass's score products took 0.26 s instead of 0.38 s on one CPU thread (the whole
        pass 0.85 s instead of 0.91 s)."""
        self._reuse_scores = True
        try:
            yield
        finally:
            self._reuse_scores, self._score_buffer = False, None

    def full_sort_predict(self, interaction: Any) -> Tensor:
        users, items = self.pooled()
        rows = users[interaction[self.USER_ID]]
        if self.training:
            return (rows @ items.T).reshape(-1)
        if self._items_t is None:
            self._items_t = items.T.contiguous()
        if not self._reuse_scores:
            return (rows @ self._items_t).reshape(-1)
        n, n_items = len(rows), self._items_t.shape[1]
        if self._score_buffer is None or len(self._score_buffer) < n:
            self._score_buffer = rows.new_empty(n, n_items)
        return torch.mm(rows, self._items_t, out=self._score_buffer[:n]).reshape(-1)
