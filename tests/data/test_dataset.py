import pickle
import shutil

import numpy as np
import pytest

import recbole_neggen  # noqa: F401  (compat shims before recbole)
from recbole.config import Config

from recbole_neggen.data import files
from recbole_neggen.data.dataset import MultiModalDataset


def _config(root, name, tmp_path, **extra):
    return Config(model="BPR", dataset=name, config_dict={
        "data_path": str(root), "benchmark_filename": ["train", "valid", "test"],
        "load_col": {"inter": ["user_id", "item_id"]}, "checkpoint_dir": str(tmp_path / "saved"),
        "show_progress": False, **extra})


@pytest.fixture
def root(synthetic_root, tmp_path, monkeypatch):
    """A private copy of the synthetic dataset (tests edit files); cwd in tmp for RecBole's logs."""
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "prepared"
    shutil.copytree(synthetic_root, target)
    return target


def test_features_are_aligned_by_token(root, tmp_path):
    ds = MultiModalDataset(_config(root, "synthetic", tmp_path))
    assert sorted(ds.item_features) == ["image", "text"]
    tokens = ds.field2id_token["item_id"]
    for modality, feat in ds.item_features.items():
        ids, raw = files.read_features(files.feature_path(root / "synthetic", "synthetic", modality))
        row = {t: k for k, t in enumerate(ids)}
        assert feat.shape == (ds.item_num, raw.shape[1])
        assert (feat[0] == 0).all()
        expected = np.stack([raw[row[t]] for t in tokens[1:]])
        assert np.array_equal(feat[1:].numpy(), expected)
        assert ds.item_feature_mask[modality][1:].all() and not ds.item_feature_mask[modality][0]


def test_shuffled_feature_file_gives_identical_tensors(root, tmp_path):
    before = MultiModalDataset(_config(root, "synthetic", tmp_path))
    for modality in ("text", "image"):
        path = files.feature_path(root / "synthetic", "synthetic", modality)
        ids, feat = files.read_features(path)
        perm = np.random.default_rng(0).permutation(len(ids))
        files.write_features(path, ids[perm], feat[perm])
    assert not before.features_current()
    after = MultiModalDataset(_config(root, "synthetic", tmp_path))
    for modality in ("text", "image"):
        assert np.array_equal(before.item_features[modality].numpy(), after.item_features[modality].numpy())


def test_modalities_config(root, tmp_path):
    only = MultiModalDataset(_config(root, "synthetic", tmp_path, modalities=["text"]))
    assert list(only.item_features) == ["text"]
    with pytest.raises(FileNotFoundError, match=r"\['audio'\] requested but not found: .*synthetic.audio.npz"):
        MultiModalDataset(_config(root, "synthetic", tmp_path, modalities=["audio"]))
    with pytest.raises(ValueError, match="list of names"):
        MultiModalDataset(_config(root, "synthetic", tmp_path, modalities="text"))


def test_missing_items_mean_filled(root, tmp_path):
    path = files.feature_path(root / "synthetic", "synthetic", "image")
    ids, feat = files.read_features(path)
    files.write_features(path, ids[:-5], feat[:-5])
    ds = MultiModalDataset(_config(root, "synthetic", tmp_path))
    mask = ds.item_feature_mask["image"]
    missing = set(ids[-5:].tolist()) & set(ds.field2id_token["item_id"][1:].tolist())
    assert int((~mask[1:]).sum()) == len(missing) > 0
    mean = ds.item_features["image"][mask].mean(0)
    assert np.allclose(ds.item_features["image"][1:][~mask[1:]].numpy(), mean.numpy(), atol=1e-6)


def test_pickle_and_recbole_dataset_cache(root, tmp_path):
    from recbole.data import create_dataset

    cfg = _config(root, "synthetic", tmp_path)
    ds = MultiModalDataset(cfg)
    clone = pickle.loads(pickle.dumps(ds))
    assert all(np.array_equal(clone.item_features[m], ds.item_features[m]) for m in ds.item_features)
    ds.save()
    cached = tmp_path / "saved" / "synthetic-MultiModalDataset.pth"
    assert cached.is_file()
    loaded = create_dataset(_config(root, "synthetic", tmp_path, dataset_save_path=str(cached)))
    assert isinstance(loaded, MultiModalDataset) and loaded.features_current()
    assert np.array_equal(loaded.item_features["text"], ds.item_features["text"])
    train, valid, test = loaded.build()
    assert np.array_equal(train.item_features["text"], ds.item_features["text"])
    assert len(train) + len(valid) + len(test) == len(ds)
