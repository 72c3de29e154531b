"""RecBole dataset whose items carry per-modality feature matrices aligned to RecBole ids."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from recbole.data.dataset import Dataset

from recbole_neggen.data.features import align_features
from recbole_neggen.data.files import feature_path, list_modalities


def _modalities(value: Any, available: list[str], directory: Path, name: str) -> list[str]:
    """Config ``modalities`` (None = every ``<name>.*.npz`` present) -> checked list of names."""
    if value is None:
        return available
    if isinstance(value, str) or not all(isinstance(m, str) for m in value):
        raise ValueError(f"config 'modalities' must be a list of names, got {value!r}")
    missing = [m for m in value if m not in available]
    if missing:
        paths = ", ".join(str(feature_path(directory, name, m)) for m in missing)
        raise FileNotFoundError(f"modalities {missing} requested but not found: {paths}; "
                                f"present: {available or 'none'}")
    return list(value)


class MultiModalDataset(Dataset):
    """RecBole ``Dataset`` plus aligned item features.

    After RecBole's loading and remapping it sets
    - ``item_features``: {modality: FloatTensor [n_items, dim]}, row 0 = [PAD] zeros, row k = item k;
    - ``item_feature_mask``: {modality: BoolTensor [n_items]}, False where the item had no feature
      (its row is the mean of the present ones, as MMRec fills);
    - ``feature_files``: {modality: (path, size, mtime_ns)} to tell whether a pickled copy is stale.
    Files are ``<data_path>/<dataset>.<modality>.npz``; config ``modalities`` picks them.
    The attributes pickle with the dataset, so RecBole's ``save_dataset`` cache keeps them.
    """

    item_features: dict[str, torch.Tensor]
    item_feature_mask: dict[str, torch.Tensor]
    feature_files: dict[str, tuple[str, int, int]]

    def _from_scratch(self) -> None:
        super()._from_scratch()
        self._load_item_features()

    def _load_item_features(self) -> None:
        directory = Path(self.dataset_path)
        names = _modalities(self.config["modalities"], list_modalities(directory, self.dataset_name),
                            directory, self.dataset_name)
        tokens = self.field2id_token[self.iid_field]
        self.item_features, self.item_feature_mask, self.feature_files = {}, {}, {}
        for modality in names:
            path = feature_path(directory, self.dataset_name, modality)
            aligned = align_features(path, tokens)
            self.item_features[modality] = aligned.feat
            self.item_feature_mask[modality] = aligned.mask
            stat = path.stat()
            self.feature_files[modality] = (str(path), stat.st_size, stat.st_mtime_ns)
            self.logger.info(f"modality {modality}: {tuple(aligned.feat.shape)} from {path}, "
                             f"{aligned.n_missing} items missing (mean-filled), {aligned.n_extra} unknown ids")
        if not names:
            self.logger.warning(f"no item feature files ({self.dataset_name}.<modality>.npz) in {directory}")

    def features_current(self) -> bool:
        """True when every feature file still has the size and mtime it had when loaded."""
        for path, size, mtime in self.feature_files.values():
            p = Path(path)
            if not p.is_file() or p.stat().st_size != size or p.stat().st_mtime_ns != mtime:
                return False
        return True

    def __str__(self) -> str:
        feats = ", ".join(f"{m} {tuple(f.shape)}" for m, f in self.item_features.items()) or "none"
        return f"{super().__str__()}\nItem features: {feats}"
