"""Full-sort evaluation without per-user Python loops or dense ``[B, n_items]`` positive matrices.

Both classes return exactly what RecBole's originals return (tests compare them entry by entry); only how
it is computed differs:

- :class:`FullSortLoader` gathers each batch's history and positive items from CSR arrays built once,
  instead of RecBole's per-user ``torch.full_like`` loop in ``collate_fn``.
- :class:`TopkCollector` fills ``rec.topk`` (hit flags of the top-k plus the positives per user) by
  looking the top-k items up among the sorted positive keys, instead of scattering the positives into a
  dense int matrix the size of the score block.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from recbole.data.dataloader import FullSortEvalDataLoader
from recbole.evaluator import Collector
from torch import Tensor

TOPK_KEY = "rec.topk"


def _csr(rows: np.ndarray) -> tuple[Tensor, Tensor]:
    """Per-user item tensors (``None`` for users without any) -> ``indptr [n_users + 1]``, ``indices [nnz]``."""
    lengths = np.array([0 if r is None else len(r) for r in rows], dtype=np.int64)
    indptr = torch.from_numpy(np.concatenate([[0], np.cumsum(lengths)]))
    present = [r for r in rows if r is not None and len(r)]
    indices = torch.cat(present) if present else torch.zeros(0, dtype=torch.int64)
    return indptr, indices


def gather_rows(indptr: Tensor, indices: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
    """CSR rows ``rows [B]`` as coordinates: (position of the row in ``rows`` ``[nnz_B]``, column ``[nnz_B]``),
    in row order and, within a row, in stored order."""
    starts, lengths = indptr[rows], indptr[rows + 1] - indptr[rows]
    row_of = torch.repeat_interleave(torch.arange(len(rows)), lengths)
    offsets = torch.arange(int(lengths.sum())) - torch.repeat_interleave(lengths.cumsum(0) - lengths, lengths)
    return row_of, indices[starts[row_of] + offsets]


class FullSortLoader(FullSortEvalDataLoader):
    """RecBole's full-sort loader with a vectorised user-level ``collate_fn`` (same batches, same order);
    sequential models keep RecBole's own collation."""

    def __init__(self, config: Any, dataset: Any, sampler: Any, shuffle: bool = False) -> None:
        super().__init__(config, dataset, sampler, shuffle=shuffle)
        if not self.is_sequential:
            self.history_ptr, self.history_idx = _csr(self.uid2history_item)
            self.positive_ptr, self.positive_idx = _csr(self.uid2positive_item)

    def collate_fn(self, index: Any) -> Any:
        if self.is_sequential:
            return super().collate_fn(index)
        user_df = self.user_df[np.asarray(index)]
        users = user_df[self.uid_field]
        history = gather_rows(self.history_ptr, self.history_idx, users)
        positive_u, positive_i = gather_rows(self.positive_ptr, self.positive_idx, users)
        return user_df, history, positive_u, positive_i


def topk_hits(topk_idx: Tensor, positive_u: Tensor, positive_i: Tensor, n_items: int) -> Tensor:
    """``[B, k]`` int flags: is ``topk_idx[b, j]`` one of row b's positives ``{positive_i[e] : positive_u[e] = b}``."""
    keys = (positive_u * n_items + positive_i).sort().values  # [P]
    rows = torch.arange(topk_idx.shape[0], device=topk_idx.device).unsqueeze(1)
    query = rows * n_items + topk_idx  # [B, k]
    at = torch.searchsorted(keys, query).clamp(max=max(len(keys) - 1, 0))
    return (keys[at] == query).int() if len(keys) else torch.zeros_like(query, dtype=torch.int)


class TopkCollector(Collector):
    """RecBole's ``Collector`` with a sparse ``rec.topk``, concatenated once per evaluation (RecBole's
    ``update_tensor`` re-copies everything collected so far at every batch); every other entry is RecBole's
    own code."""

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.sparse_topk = bool(self.register.need(TOPK_KEY))
        setattr(self.register, TOPK_KEY, False)  # the parent fills the other entries only
        self._topk_parts: list[Tensor] = []

    def eval_batch_collect(self, scores_tensor: Tensor, interaction: Any, positive_u: Tensor,
                           positive_i: Tensor) -> None:
        super().eval_batch_collect(scores_tensor, interaction, positive_u, positive_i)
        if not self.sparse_topk:
            return
        _, topk_idx = torch.topk(scores_tensor, max(self.topk), dim=-1)  # [B, k]
        hits = topk_hits(topk_idx, positive_u.to(topk_idx.device), positive_i.to(topk_idx.device),
                         scores_tensor.shape[1])
        pos_len = torch.bincount(positive_u, minlength=scores_tensor.shape[0]).to(hits)  # [B]
        self._topk_parts.append(torch.cat([hits, pos_len.unsqueeze(1)], dim=1))

    def get_data_struct(self) -> Any:
        if self._topk_parts:
            self.data_struct.set(TOPK_KEY, torch.cat(self._topk_parts))
            self._topk_parts = []
        return super().get_data_struct()
