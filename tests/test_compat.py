"""Each shim in recbole_neggen.compat, exercised through the RecBole code path it repairs. Every test here
fails when its shim is removed (the numbers in the comments are the failures seen without it)."""
from pathlib import PurePosixPath

import numpy as np
import pytest
import torch

from recbole_neggen import compat
from recbole_neggen.config import Config


def test_numpy2_aliases_let_recbole_config_build():
    # without shim 1: AttributeError `np.float_` was removed in the NumPy 2.0 release
    config = Config(model="BPR", dataset="ml-100k", config_dict={"data_path": "unused"})
    assert np.float_ is np.float64
    assert config["model"] == "BPR"


def test_dok_matrix_update_restored_for_lightgcn_adjacency():
    # without shim 5: AttributeError 'dok_matrix' object has no attribute '_update'
    import scipy.sparse as sp

    matrix = sp.dok_matrix((3, 3), dtype=np.float32)
    matrix._update({(0, 1): 1.0, (2, 0): 2.0})
    assert matrix.toarray().tolist() == [[0, 1, 0], [0, 0, 0], [2, 0, 0]]


def _dataset_with_item_features(tmp_path, item_lines):
    from recbole.data.dataset import Dataset

    root = tmp_path / "data" / "toy"
    root.mkdir(parents=True)
    inter = ["user_id:token\titem_id:token"] + [f"u{u}\ti{i}" for u in range(4) for i in range(3)]
    (root / "toy.inter").write_text("\n".join(inter) + "\n")
    (root / "toy.item").write_text("\n".join(item_lines) + "\n")
    config = Config(
        model="BPR",
        dataset="toy",
        config_dict={
            "data_path": str(tmp_path / "data"),
            "load_col": {"inter": ["user_id", "item_id"], "item": ["item_id", "tags", "weight", "brand"]},
        },
    )
    return Dataset(config)


def test_pandas3_seq_fields_empty_cells_and_lengths(tmp_path):
    # without shim 4a: AttributeError 'float' object has no attribute 'split' (empty seq cell stays NaN);
    # without shim 3: ValueError Length of values (1) does not match length of index (Series.agg(len))
    dataset = _dataset_with_item_features(
        tmp_path,
        [
            "item_id:token\ttags:token_seq\tweight:float\tbrand:token",
            "i0\ta b\t1.0\tx",
            "i1\t\t\t",
            "i2\tc\t3.0\ty",
        ],
    )
    items = dataset.get_item_feature()
    row = {tok: dataset.token2id("item_id", tok) for tok in ("i0", "i1", "i2")}
    tags = items["tags"]
    assert (tags[row["i0"]] > 0).sum().item() == 2
    assert (tags[row["i1"]] > 0).sum().item() == 0
    assert (tags[row["i2"]] > 0).sum().item() == 1
    # tokens of different rows stay distinct after remapping (lengths were split correctly)
    assert len(set(tags[row["i0"]].tolist()) | set(tags[row["i2"]].tolist()) - {0}) == 3


def test_pandas3_fill_nan_assigns(tmp_path):
    # without shim 4b: no error, but the missing float stays NaN and the missing token is not [PAD]
    dataset = _dataset_with_item_features(
        tmp_path,
        [
            "item_id:token\ttags:token_seq\tweight:float\tbrand:token",
            "i0\ta\t1.0\tx",
            "i1\tb\t\t",
            "i2\tc\t3.0\ty",
        ],
    )
    items = dataset.get_item_feature()
    i1 = dataset.token2id("item_id", "i1")
    weights = np.asarray(items["weight"], dtype=np.float64)
    assert np.isfinite(weights).all()
    assert weights[i1] == pytest.approx(2.0)  # column mean of 1.0 and 3.0
    assert int(items["brand"][i1]) == 0


def test_trusted_checkpoint_loader_refuses_foreign_and_modified_files(tmp_path):
    path = tmp_path / "model.pth"
    torch.save({"config": PurePosixPath("a pickled object"), "state_dict": {}}, path)
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(path)  # torch >= 2.6: why RecBole's own reload fails without shim 2
    with pytest.raises(ValueError, match="did not write it"):
        compat.load_trusted_checkpoint(path)
    compat.mark_trusted(path)
    assert "state_dict" in compat.load_trusted_checkpoint(path)
    with open(path, "ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(ValueError, match="does not match"):
        compat.load_trusted_checkpoint(path)
