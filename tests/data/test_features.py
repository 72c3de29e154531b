import logging

import numpy as np
import pytest

from recbole_neggen.data.features import align_features
from recbole_neggen.data.files import write_features

TOKENS = ["[PAD]", "c", "a", "b", "d"]


def _write(path, ids, feat):
    np.savez(path, ids=np.asarray(ids, dtype=np.str_), feat=np.asarray(feat))
    return path


def test_rows_follow_tokens_whatever_the_file_order(tmp_path):
    feat = np.arange(12, dtype=np.float32).reshape(4, 3)
    ids = ["a", "b", "c", "d"]
    one = align_features(_write(tmp_path / "one.npz", ids, feat), TOKENS)
    perm = [2, 0, 3, 1]
    two = align_features(_write(tmp_path / "two.npz", [ids[p] for p in perm], feat[perm]), TOKENS)
    assert one.feat.shape == (5, 3) and one.feat.dtype.is_floating_point
    assert (one.feat[0] == 0).all()
    assert one.feat[1].tolist() == feat[2].tolist()  # token 'c'
    assert one.feat[2].tolist() == feat[0].tolist()  # token 'a'
    assert (one.feat == two.feat).all() and (one.mask == two.mask).all()
    assert one.mask.tolist() == [False, True, True, True, True] and one.n_missing == 0


def test_missing_items_mean_filled_and_masked_extra_ids_counted(tmp_path, caplog):
    feat = np.array([[1.0, 0.0], [3.0, 4.0], [9.0, 9.0]], dtype=np.float32)
    path = _write(tmp_path / "f.npz", ["a", "c", "zzz"], feat)
    with caplog.at_level(logging.INFO):
        out = align_features(path, TOKENS)
    assert out.mask.tolist() == [False, True, True, False, False]
    assert out.n_missing == 2 and out.n_extra == 1
    assert out.feat[3].tolist() == [2.0, 2.0] and out.feat[4].tolist() == [2.0, 2.0]
    assert "2 of 4 items have no feature" in caplog.text and "1 ids are not items" in caplog.text


@pytest.mark.parametrize("ids,feat,match", [
    (["a", "a"], np.ones((2, 2), np.float32), "duplicate ids"),
    (["a", "b"], np.array([[1.0, np.nan], [0, 0]], np.float32), "NaN/inf in row 0"),
    (["a", "b"], np.ones((2, 2), np.int64), "not floating point"),
    (["a", "b", "c"], np.ones((2, 2), np.float32), "do not match"),
    (["x", "y"], np.ones((2, 2), np.float32), "none of its 2 ids"),
])
def test_bad_files_raise_naming_the_file(tmp_path, ids, feat, match):
    path = _write(tmp_path / "bad.npz", ids, feat)
    with pytest.raises(ValueError, match=match) as err:
        align_features(path, TOKENS)
    assert str(path) in str(err.value)


def test_width_and_padding_and_missing_arrays(tmp_path):
    path = tmp_path / "ok.npz"
    write_features(path, ["a"], np.ones((1, 4)))
    with pytest.raises(ValueError, match="width 4, expected 8"):
        align_features(path, TOKENS, expected_dim=8)
    with pytest.raises(ValueError, match="must start with"):
        align_features(path, TOKENS[1:])
    np.savez(tmp_path / "noids.npz", feat=np.ones((1, 2)))
    with pytest.raises(ValueError, match=r"noids.npz: missing arrays \['ids'\]"):
        align_features(tmp_path / "noids.npz", TOKENS)
    (tmp_path / "garbage.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="garbage.npz"):
        align_features(tmp_path / "garbage.npz", TOKENS)
