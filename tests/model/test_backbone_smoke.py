"""One-epoch ``objective()`` runs of NSRec with every backbone: id backbones on the bundled ml-100k,
multi-modal ones on a tiny generated synthetic dataset (text + image features); checkpoints reloaded."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from recbole_neggen.model.backbones import BACKBONES
from recbole_neggen.quick_start import objective

DATASETS = {"mf": "ml-100k", "lightgcn": "ml-100k", "vbpr": "synthetic", "freedom": "synthetic"}


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Prepared root holding ``synthetic`` (60 users, 40 items); read-only."""
    from recbole_neggen.data.synthetic import make_synthetic

    root = tmp_path_factory.mktemp("prepared")
    make_synthetic(root, n_users=60, n_items=40, mean_per_user=12, seed=7)
    return root


def test_every_registered_backbone_has_a_smoke_run() -> None:
    assert sorted(DATASETS) == BACKBONES.names()


@pytest.mark.parametrize("backbone", sorted(DATASETS))
def test_one_epoch_objective(tmp_path: Path, synthetic_root: Path, backbone: str) -> None:
    result = objective(
        "NSRec", DATASETS[backbone],
        config_dict={"backbone": backbone, "neg_strategy": "mixgcf", "epochs": 1, "embedding_size": 16,
                     "run_root": str(tmp_path / "runs"), "prepared_path": str(synthetic_root),
                     "eval_batch_size": 1 << 20, "topk": [10, 20]},  # 40 synthetic items: no @50
        saved=True,
    )
    stored = json.loads((Path(result["run_dir"]) / "result.json").read_text())
    assert stored["epochs_run"] == 1 and stored["dataset"] == DATASETS[backbone]
    assert set(stored["test"]) >= {"recall@20", "ndcg@20"}
    assert all(math.isfinite(v) and 0 <= v <= 1 for v in stored["test"].values())
    assert Path(stored["checkpoint"]).is_file()
