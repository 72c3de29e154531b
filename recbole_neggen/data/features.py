"""Align per-item feature files (keyed by raw item token) to RecBole's remapped item ids."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from recbole_neggen.data.files import read_features

logger = logging.getLogger(__name__)

PAD = "[PAD]"


@dataclass(frozen=True)
class AlignedFeature:
    """One modality aligned to RecBole ids.

    feat: FloatTensor [n_items, dim]; row 0 ([PAD]) is zeros, row k is the feature of token k;
          items without a feature hold the mean of the present items (MMRec's fill).
    mask: BoolTensor [n_items]; True where the file had the item (row 0 is False).
    n_extra: ids in the file that RecBole does not know (not in the interactions), ignored.
    """

    feat: torch.Tensor
    mask: torch.Tensor
    n_extra: int

    @property
    def n_missing(self) -> int:
        """Items (excluding [PAD]) with no feature in the file."""
        return int((~self.mask[1:]).sum())


def align_features(path: str | Path, tokens: Sequence[str], expected_dim: int | None = None) -> AlignedFeature:
    """Load ``path`` (.npz with ``ids`` str [n], ``feat`` float [n, dim]) aligned to ``tokens``.

    tokens: RecBole's ``field2id_token['item_id']`` (index 0 = '[PAD]'). Checks ids unique, width
    (``expected_dim`` if given), floating dtype, finite values; every error names the file.
    Missing items are mean-filled and reported in the mask; both counts are logged.
    """
    path = Path(path)
    tokens = [str(t) for t in tokens]
    if not tokens or tokens[0] != PAD:
        raise ValueError(f"{path}: item tokens must start with {PAD!r} (RecBole's padding id 0)")
    ids, feat = read_features(path)
    if ids.ndim != 1 or feat.ndim != 2 or ids.shape[0] != feat.shape[0]:
        raise ValueError(f"{path}: ids shape {ids.shape} and feat shape {feat.shape} do not match ([n], [n, dim])")
    if not np.issubdtype(feat.dtype, np.floating):
        raise ValueError(f"{path}: feat dtype {feat.dtype} is not floating point")
    if expected_dim is not None and feat.shape[1] != expected_dim:
        raise ValueError(f"{path}: feature width {feat.shape[1]}, expected {expected_dim}")
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"{path}: duplicate ids, e.g. {uniq[counts > 1][:5].tolist()}")
    bad = np.flatnonzero(~np.isfinite(feat).all(axis=1))
    if bad.size:
        raise ValueError(f"{path}: NaN/inf in row {bad[0]} (id {ids[bad[0]]!r}); {bad.size} bad rows")
    if ids.shape[0] == 0:
        raise ValueError(f"{path}: the feature file is empty")

    row_of = {tok: k for k, tok in enumerate(tokens) if k > 0}
    target = np.array([row_of.get(i, -1) for i in ids], dtype=np.int64)  # file row -> RecBole id or -1
    known = target >= 0
    n_extra = int((~known).sum())
    out = np.zeros((len(tokens), feat.shape[1]), dtype=np.float32)
    mask = np.zeros(len(tokens), dtype=bool)
    out[target[known]] = feat[known]
    mask[target[known]] = True
    if not mask.any():
        raise ValueError(f"{path}: none of its {ids.shape[0]} ids is an item of the dataset "
                         f"(file ids e.g. {ids[:3].tolist()}, dataset tokens e.g. {tokens[1:4]})")
    n_missing = int((~mask[1:]).sum())
    if n_missing:
        out[1:][~mask[1:]] = out[mask].mean(axis=0)
        logger.warning("%s: %d of %d items have no feature: filled with the mean (mask False)",
                       path, n_missing, len(tokens) - 1)
    if n_extra:
        logger.info("%s: %d ids are not items of the dataset (no interactions): ignored", path, n_extra)
    return AlignedFeature(torch.from_numpy(out), torch.from_numpy(mask), n_extra)
