import json

import numpy as np
from PIL import Image

from recbole_neggen.data import files
from recbole_neggen.data.split import split_sizes
from recbole_neggen.data.synthetic import ATTRIBUTES, KEY_ATTRIBUTES, make_synthetic


def _interactions(directory, name):
    rows = []
    for code, split in enumerate(files.SPLITS):
        lines = files.split_path(directory, name, split).read_text().splitlines()[1:]
        rows += [(int(u), int(i), code) for u, i in (line.split("\t") for line in lines)]
    return np.array(rows)


def test_layout_records_images_and_split(synthetic_root):
    d = synthetic_root / "synthetic"
    assert files.is_prepared(d, "synthetic")
    assert files.list_modalities(d, "synthetic") == ["image", "text"]
    records = [r for _, r in files.read_jsonl(files.items_path(d, "synthetic"))]
    assert len(records) == 40
    assert set(records[0]["attributes"]) == set(ATTRIBUTES)
    assert records[0]["attributes"]["colour"] in records[0]["description"]
    with Image.open(d / records[0]["image"]) as img:
        assert img.size == (32, 32)
    rows = _interactions(d, "synthetic")
    for u in np.unique(rows[:, 0]):
        labels = rows[rows[:, 0] == u, 2]
        assert tuple(int((labels == k).sum()) for k in range(3)) == split_sizes(labels.size)
    assert len(np.unique(rows[:, :2], axis=0)) == len(rows)  # no duplicate pairs
    prov = json.loads(files.provenance_path(d, "synthetic").read_text())
    assert prov["counts"]["key_attributes"] == list(KEY_ATTRIBUTES)


def test_seeded_and_idempotent(tmp_path):
    a = make_synthetic(tmp_path / "a", n_users=30, n_items=20, seed=1)
    b = make_synthetic(tmp_path / "b", n_users=30, n_items=20, seed=1)
    c = make_synthetic(tmp_path / "c", n_users=30, n_items=20, seed=2)
    read = lambda r: files.split_path(r.directory, "synthetic", "train").read_text()  # noqa: E731
    assert read(a) == read(b) != read(c)
    assert make_synthetic(tmp_path / "a", n_users=30, n_items=20, seed=1).skipped
    ta, tb = (files.read_features(files.feature_path(r.directory, "synthetic", "text"))[1] for r in (a, b))
    assert np.array_equal(ta, tb)


def test_preferences_depend_on_key_attributes_only(tmp_path):
    res = make_synthetic(tmp_path, n_users=200, n_items=150, seed=3)
    attrs = {int(r["item_id"]): r["attributes"] for _, r in files.read_jsonl(files.items_path(res.directory, "synthetic"))}
    rows = _interactions(res.directory, "synthetic")

    def top_share(attribute):
        """Mean over users of the share of their items that carry their most frequent value,
        divided by the same share in the item catalogue (1.0 = no preference)."""
        values = np.array([attrs[i][attribute] for i in rows[:, 1]])
        base = max(np.unique([a[attribute] for a in attrs.values()], return_counts=True)[1]) / len(attrs)
        shares = [np.unique(values[rows[:, 0] == u], return_counts=True)[1].max() / (rows[:, 0] == u).sum()
                  for u in np.unique(rows[:, 0])]
        return float(np.mean(shares)) / base

    key = [top_share(a) for a in KEY_ATTRIBUTES]
    irrelevant = [top_share(a) for a in ("material", "size", "style")]
    assert min(key) > max(irrelevant) + 0.3


def test_item_sampler_matches_its_law():
    from recbole_neggen.data.synthetic import ItemSampler

    rng = np.random.default_rng(0)
    cat, col = rng.integers(3, size=40), rng.integers(2, size=40)
    pref_cat, pref_col, pop = rng.normal(size=(2, 3)), rng.normal(size=(2, 2)), np.exp(rng.normal(size=40))
    sampler = ItemSampler(cat, col, pref_cat, pref_col, pop)
    for u in range(2):
        exact = np.exp(pref_cat[u][cat] + pref_col[u][col]) * pop
        exact /= exact.sum()
        freq = np.bincount(sampler.draw(rng, u, 200_000), minlength=40) / 200_000
        assert np.abs(freq - exact).max() < 0.01
