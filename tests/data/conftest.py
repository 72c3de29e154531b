"""Fixtures for tests/data: tiny synthetic and MMRec-format datasets (no network, no MiniLM)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Prepared root holding ``synthetic`` (60 users, 40 items); treat as read-only."""
    from recbole_neggen.data.synthetic import make_synthetic

    root = tmp_path_factory.mktemp("prepared")
    make_synthetic(root, n_users=60, n_items=40, mean_per_user=12, seed=7)
    return root


def write_mmrec(folder: Path, name: str = "toy", *, n_users: int = 6, n_items: int = 8, items: bool = True,
                text_feat: bool = False, image_feat: bool = False) -> Path:
    """Write a tiny MMRec-format dataset: each user has 5 items, split 3/1/1 by x_label."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["userID\titemID\tx_label"]
    for u in range(n_users):
        for j in range(5):
            rows.append(f"{u}\t{(u + j) % n_items}\t{0 if j < 3 else j - 2}")
    (folder / f"{name}.inter").write_text("\n".join(rows) + "\n")
    (folder / "i_id_mapping.csv").write_text("asin\titemID\n" + "".join(f"A{i:04d}\t{i}\n" for i in range(n_items)))
    (folder / "u_id_mapping.csv").write_text("user_id\tuserID\n" + "".join(f"U{u}\t{u}\n" for u in range(n_users)))
    if items:
        with open(folder / "items.jsonl", "w") as f:
            for i in range(n_items):
                rec = {"item_id": i, "asin": f"A{i:04d}", "title": f"Item {i} &amp; <b>friends</b>",
                       "description": f"number {i}", "brand": "", "categories": "[['Baby', 'Toys']]"}
                if i == 1:
                    rec.update(title="", description="")
                f.write(json.dumps(rec) + "\n")
    rng = np.random.default_rng(0)
    if text_feat:
        np.save(folder / "text_feat.npy", rng.normal(size=(n_items, 6)).astype(np.float32))
    if image_feat:
        np.save(folder / "image_feat.npy", rng.normal(size=(n_items, 5)).astype(np.float32))
    return folder


@pytest.fixture
def mmrec_source(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``mmrec_source(**kw)`` writes a tiny MMRec folder under tmp_path/src/<name>."""
    return lambda name="toy", **kw: write_mmrec(tmp_path / "src" / name, name, **kw)
