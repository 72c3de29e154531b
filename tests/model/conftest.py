"""Fixtures for tests/model: a tiny dataset with a planted preference, and models built on it.

``planted`` (40 users, 30 items): items ``i0..i11`` form group A, ``i12..i29`` group B. Users ``u0..u19``
interact only with A items, ``u20..u39`` only with B items (6 train, 1 valid, 1 test each). Item features:
``text`` (8-d) carries the group plus noise, ``image`` (5-d) is pure noise.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from recbole.utils import init_seed

from recbole_neggen.config import Config
from recbole_neggen.data import files
from recbole_neggen.model.nsrec import NSRec
from recbole_neggen.utils import create_dataset, data_preparation

PLANTED = "planted"
N_USERS, N_ITEMS, GROUP_A = 40, 30, 12
PER_USER = 8  # 6 train, 1 valid, 1 test


@pytest.fixture(scope="session")
def planted_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Prepared root holding the ``planted`` dataset; treat as read-only."""
    root = tmp_path_factory.mktemp("prepared")
    directory = root / PLANTED
    directory.mkdir()
    rng = np.random.default_rng(0)
    users, items, labels = [], [], []
    for u in range(N_USERS):
        group = np.arange(GROUP_A) if u < N_USERS // 2 else np.arange(GROUP_A, N_ITEMS)
        chosen = rng.choice(group, size=PER_USER, replace=False)
        users += [f"u{u}"] * PER_USER
        items += [f"i{i}" for i in chosen]
        labels += [0] * (PER_USER - 2) + [1, 2]
    files.write_splits(directory, PLANTED, users, items, np.asarray(labels))
    ids = [f"i{i}" for i in range(N_ITEMS)]
    in_a = (np.arange(N_ITEMS) < GROUP_A).astype(np.float32)
    text = rng.normal(scale=0.3, size=(N_ITEMS, 8)).astype(np.float32)
    text[:, 0] += 2 * in_a - 1
    files.write_features(files.feature_path(directory, PLANTED, "text"), ids, text)
    files.write_features(files.feature_path(directory, PLANTED, "image"), ids,
                         rng.normal(size=(N_ITEMS, 5)).astype(np.float32))
    files.write_provenance(directory, PLANTED, {"source": "tests/model/conftest.py planted preference"})
    return root


@dataclass
class Built:
    """A model on the planted data with its config, dataset and training loader."""

    config: Config
    dataset: Any
    train: Any
    model: NSRec

    def batch(self) -> Any:
        """The first training batch (``user_id``, ``item_id``, ``neg_cand [B, C]``)."""
        return next(iter(self.train))

    def group_a_items(self) -> np.ndarray:
        """RecBole ids of the group-A items."""
        return np.asarray([self.dataset.token2id(self.dataset.iid_field, f"i{i}") for i in range(GROUP_A)])


def planted_config(root: Path, backbone: str, strategy: str = "rns", **overrides: Any) -> Config:
    """NSRec config on the planted data: d = 16, 2 layers, batch 64, kNN k = 3, seed 7."""
    config_dict = {"prepared_path": str(root), "backbone": backbone, "neg_strategy": strategy,
                   "embedding_size": 16, "n_layers": 2, "train_batch_size": 64, "knn_k": 3, "seed": 7,
                   "run_root": str(root / "runs"), **overrides}
    return Config(model="NSRec", dataset=PLANTED, config_dict=config_dict)


@pytest.fixture
def build(planted_root: Path) -> Callable[..., Built]:
    """``build(backbone, strategy="rns", **config_overrides)``: seeded NSRec on the planted data."""

    def make(backbone: str, strategy: str = "rns", **overrides: Any) -> Built:
        config = planted_config(planted_root, backbone, strategy, **overrides)
        init_seed(config["seed"], config["reproducibility"])
        dataset = create_dataset(config)
        train, _, _ = data_preparation(config, dataset)
        init_seed(config["seed"], config["reproducibility"])
        return Built(config, train._dataset, train, NSRec(config, train._dataset))

    return make
