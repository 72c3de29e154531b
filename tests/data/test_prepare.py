import gzip
import json
import logging

import numpy as np
import pytest

from recbole_neggen.data import files
from recbole_neggen.data.prepare import main, prepare_amazon, prepare_mmrec
from recbole_neggen.data.split import split_sizes


def _rows(path):
    lines = path.read_text().splitlines()
    assert lines[0] == files.INTER_HEADER
    return [tuple(line.split("\t")) for line in lines[1:]]


def test_mmrec_to_atomic_files_and_text_features(mmrec_source, tmp_path, caplog):
    src = mmrec_source()
    with caplog.at_level(logging.INFO):
        res = prepare_mmrec("toy", src, tmp_path / "out", text_encoder="hashing")
    out = tmp_path / "out" / "toy"
    assert res.directory == out and not res.skipped
    source_rows = [line.split("\t") for line in (src / "toy.inter").read_text().splitlines()[1:]]
    for code, split in enumerate(files.SPLITS):
        expected = [(u, i) for u, i, x in source_rows if int(x) == code]  # source order kept
        assert _rows(files.split_path(out, "toy", split)) == expected
    ids, feat = files.read_features(files.feature_path(out, "toy", "text"))
    assert "1" not in ids.tolist() and len(ids) == 7 and feat.shape == (7, 384)  # item 1 has no text
    assert "1 of 8 items have no title and no description" in caplog.text
    records = [obj for _, obj in files.read_jsonl(files.items_path(out, "toy"))]
    assert records[0]["item_id"] == "0" and records[0]["title"] == "Item 0 & friends"
    assert records[0]["categories"] == ["Baby", "Toys"] and records[0]["asin"] == "A0000"
    assert files.list_modalities(out, "toy") == ["text"]


def test_prepare_is_idempotent_and_notices_changes(mmrec_source, tmp_path, caplog):
    src = mmrec_source()
    prepare_mmrec("toy", src, tmp_path, text_encoder="hashing")
    stamp = files.split_path(tmp_path / "toy", "toy", "train").stat().st_mtime_ns
    with caplog.at_level(logging.INFO):
        again = prepare_mmrec("toy", src, tmp_path, text_encoder="hashing")
    assert again.skipped and "up to date" in caplog.text
    assert files.split_path(tmp_path / "toy", "toy", "train").stat().st_mtime_ns == stamp
    with open(src / "toy.inter", "a") as f:
        f.write("0\t7\t0\n")
    assert not prepare_mmrec("toy", src, tmp_path, text_encoder="hashing").skipped
    assert ("0", "7") in _rows(files.split_path(tmp_path / "toy", "toy", "train"))


def test_row_feature_files_become_id_keyed(mmrec_source, tmp_path):
    src = mmrec_source(text_feat=True, image_feat=True)
    prepare_mmrec("toy", src, tmp_path, text_encoder="hashing")
    for modality, width in (("text", 6), ("image", 5)):
        ids, feat = files.read_features(files.feature_path(tmp_path / "toy", "toy", modality))
        source = np.load(src / f"{modality}_feat.npy")
        assert ids.tolist() == [str(i) for i in range(8)] and feat.shape == (8, width)
        assert np.array_equal(feat, source)


@pytest.mark.parametrize("edit,match", [
    (lambda s: s.replace("x_label", "label"), r"toy.inter: missing column\(s\) \['x_label'\]"),
    (lambda s: s.replace("0\t0\t0\n", "0\t0\t5\n", 1), r"toy.inter:2: x_label must be 0, 1 or 2"),
    (lambda s: s.replace("0\t0\t0\n", "0\tx\t0\n", 1), r"toy.inter:2: column 'itemID' is not an integer"),
    (lambda s: s + "0\t0\t0\n", r"toy.inter:32: duplicate interaction user 0 item 0 \(first at line 2\)"),
    (lambda s: s + "0\t99\t0\n", r"toy.inter:32: itemID 99 is not in .*i_id_mapping.csv"),
])
def test_bad_inter_file_errors_name_file_and_line(mmrec_source, tmp_path, edit, match):
    src = mmrec_source()
    (src / "toy.inter").write_text(edit((src / "toy.inter").read_text()))
    with pytest.raises(ValueError, match=match):
        prepare_mmrec("toy", src, tmp_path, text_encoder="hashing")
    assert not files.provenance_path(tmp_path / "toy", "toy").exists()


def test_bad_feature_and_item_files(mmrec_source, tmp_path):
    src = mmrec_source(text_feat=True)
    feat = np.load(src / "text_feat.npy")
    feat[5, 2] = np.inf
    np.save(src / "text_feat.npy", feat)
    with pytest.raises(ValueError, match=r"text_feat.npy: row 5 \(item id 5\) has NaN/inf"):
        prepare_mmrec("toy", src, tmp_path, text_encoder="hashing")
    np.save(src / "text_feat.npy", feat[:7])
    with pytest.raises(ValueError, match="7 rows but the item mapping has 8 items"):
        prepare_mmrec("toy", src, tmp_path, text_encoder="hashing")
    (src / "text_feat.npy").unlink()
    with open(src / "items.jsonl", "a") as f:
        f.write("{not json\n")
    with pytest.raises(ValueError, match=r"items.jsonl:9: invalid JSON"):
        prepare_mmrec("toy", src, tmp_path, text_encoder="hashing")
    lines = (src / "items.jsonl").read_text().splitlines()[:8]
    lines[3] = json.dumps({"item_id": 3, "asin": "WRONG", "title": "t"})
    (src / "items.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"items.jsonl:4: asin 'WRONG' != mapping 'A0003'"):
        prepare_mmrec("toy", src, tmp_path, text_encoder="hashing")


def test_missing_required_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="toy.inter"):
        prepare_mmrec("toy", tmp_path, tmp_path / "out")


def test_image_folder_with_default_encoder(mmrec_source, tmp_path):
    from PIL import Image

    src = mmrec_source()
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(images / "2.png")
    Image.new("RGB", (8, 8), (0, 0, 255)).save(images / "A0005.jpg")  # named by ASIN
    (images / "notes.txt").write_text("ignored")
    prepare_mmrec("toy", src, tmp_path / "out", images=images, text_encoder="hashing")
    out = tmp_path / "out" / "toy"
    ids, feat = files.read_features(files.feature_path(out, "toy", "image"))
    assert ids.tolist() == ["2", "5"] and feat.shape == (2, 72)
    assert feat[0, 24:27].tolist() == pytest.approx([1.0, 0.0, 0.0])
    records = {r["item_id"]: r for _, r in files.read_jsonl(files.items_path(out, "toy"))}
    assert (out / records["5"]["image"]).resolve() == (images / "A0005.jpg").resolve()
    assert "image" not in records["0"]


def _write_amazon(folder, gz: bool):
    folder.mkdir(parents=True, exist_ok=True)
    reviews, metas = [], []
    for u in range(8):
        for i in range(6):
            reviews.append(json.dumps({"reviewerID": f"U{u}", "asin": f"B{(u + i) % 8}", "overall": 5.0}))
    reviews.append(json.dumps({"reviewerID": "Ulone", "asin": "B0"}))  # removed by the 5-core filter
    reviews.append(reviews[0])  # duplicate pair, dropped
    for i in range(8):
        metas.append(repr({"asin": f"B{i}", "title": f"Thing {i}", "categories": [["Baby", "Bath"]],
                           "description": "" if i else "desc"}))
    opener, suffix = (gzip.open, ".json.gz") if gz else (open, ".json")
    with opener(folder / f"reviews_Baby_5{suffix}", "wt") as f:
        f.write("\n".join(reviews) + "\n")
    with opener(folder / f"meta_Baby{suffix}", "wt") as f:
        f.write("\n".join(metas) + "\n")
    return folder


@pytest.mark.parametrize("gz", [True, False])
def test_amazon_raw_to_prepared(tmp_path, gz):
    src = _write_amazon(tmp_path / "raw", gz)
    res = prepare_amazon("baby", src, tmp_path / "out", seed=5, text_encoder="hashing")
    out = res.directory
    counts = res.provenance["counts"]
    assert counts["users"] == 8 and counts["items"] == 8
    assert counts["splits"] == {"train": 32, "valid": 8, "test": 8}  # 6 per user -> 4/1/1
    mmrec = [line.split("\t") for line in (out / "baby.inter").read_text().splitlines()[1:]]
    for u in range(8):
        labels = sorted(int(x) for uu, _, x in mmrec if int(uu) == u)
        assert (labels.count(0), labels.count(1), labels.count(2)) == split_sizes(6)
    assert (out / "i_id_mapping.csv").read_text().splitlines()[1] == "B0\t0"
    ids, _ = files.read_features(files.feature_path(out, "baby", "text"))
    assert len(ids) == 8
    again = prepare_amazon("baby", src, tmp_path / "out2", seed=5, text_encoder="hashing")
    assert (again.directory / "baby.train.inter").read_text() == (out / "baby.train.inter").read_text()
    other = prepare_amazon("baby", src, tmp_path / "out3", seed=6, text_encoder="hashing")
    assert (other.directory / "baby.train.inter").read_text() != (out / "baby.train.inter").read_text()


def test_amazon_bad_line_and_missing_files(tmp_path):
    src = _write_amazon(tmp_path / "raw", gz=False)
    with open(src / "reviews_Baby_5.json", "a") as f:
        f.write('{"asin": "B1"}\n')
    with pytest.raises(ValueError, match=r"reviews_Baby_5.json:51: needs string fields"):
        prepare_amazon("baby", src, tmp_path / "out", text_encoder="hashing")
    with pytest.raises(FileNotFoundError, match="reviews_<Cat>_5"):
        prepare_amazon("baby", tmp_path, tmp_path / "out")


def test_cli(mmrec_source, tmp_path, capsys):
    src = mmrec_source()
    main(["toy", "--source", str(src), "--out", str(tmp_path), "--text-encoder", "hashing"])
    assert "prepared:" in capsys.readouterr().out
    main(["toy", "--source", str(src), "--out", str(tmp_path), "--text-encoder", "hashing"])
    assert "up to date:" in capsys.readouterr().out
    main(["synth", "--format", "synthetic", "--out", str(tmp_path), "--n-users", "20", "--n-items", "15"])
    assert files.is_prepared(tmp_path / "synth", "synth")
    with pytest.raises(SystemExit):
        main(["toy", "--source", str(src), "--n-items", "5"])
    assert "--n-items do not apply to --format mmrec" in capsys.readouterr().err


class _KilledAfter:
    """Text encoder factory whose encoder dies on its n-th chunk (a killed run), counting chunks."""

    def __init__(self, fail_on: int | None) -> None:
        self.calls, self.fail_on = 0, fail_on

    def __call__(self):
        from recbole_neggen.encoders import HashingTextEncoder

        inner, outer = HashingTextEncoder(), self

        class Enc:
            name, dim = inner.name, inner.dim

            def encode(self, texts, show_progress=True):
                outer.calls += 1
                if outer.calls == outer.fail_on:
                    raise KeyboardInterrupt
                return inner.encode(texts, show_progress=False)

        return Enc()


def test_interrupted_encoding_resumes(mmrec_source, tmp_path, monkeypatch):
    import recbole_neggen.data.prepare as prep

    src = mmrec_source(n_users=6, n_items=1100)  # 1099 texts -> 3 chunks of 512
    killed = _KilledAfter(fail_on=2)
    monkeypatch.setattr(prep.TEXT_ENCODERS, "get", lambda name: killed)
    with pytest.raises(KeyboardInterrupt):
        prepare_mmrec("toy", src, tmp_path, text_encoder="hashing")
    assert not files.is_prepared(tmp_path / "toy", "toy")
    resumed = _KilledAfter(fail_on=None)
    monkeypatch.setattr(prep.TEXT_ENCODERS, "get", lambda name: resumed)
    prepare_mmrec("toy", src, tmp_path, text_encoder="hashing")
    assert resumed.calls == 2  # chunk 1 came from the interrupted run
    assert not (tmp_path / "toy" / ".work").exists()
    ids, feat = files.read_features(files.feature_path(tmp_path / "toy", "toy", "text"))
    assert len(ids) == 1099 and np.isfinite(feat).all()


def test_parallel_preparations_of_one_dataset_do_not_collide(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from recbole_neggen.data.synthetic import make_synthetic

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: make_synthetic(tmp_path, n_users=20, n_items=15), range(2)))
    assert sorted(r.skipped for r in results) == [False, True]
    assert files.is_prepared(tmp_path / "synthetic", "synthetic")


def test_users_without_training_rows_are_dropped(mmrec_source, tmp_path, caplog):
    src = mmrec_source()
    text = (src / "toy.inter").read_text() + "9\t0\t1\n9\t1\t2\n"
    (src / "toy.inter").write_text(text)
    (src / "u_id_mapping.csv").write_text((src / "u_id_mapping.csv").read_text() + "U9\t9\n")
    with caplog.at_level(logging.WARNING):
        res = prepare_mmrec("toy", src, tmp_path, text_encoder="hashing")
    assert "dropping 1 users with no training interaction (2 rows)" in caplog.text
    assert res.provenance["counts"]["dropped_users"] == 1 and res.provenance["counts"]["users"] == 6
    assert all(u != "9" for split in files.SPLITS for u, _ in _rows(files.split_path(tmp_path / "toy", "toy", split)))


def test_images_folder_replaces_image_feat_npy(mmrec_source, tmp_path, caplog):
    from PIL import Image

    src = mmrec_source(image_feat=True)
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (8, 8), (0, 255, 0)).save(images / "3.png")
    with caplog.at_level(logging.WARNING):
        prepare_mmrec("toy", src, tmp_path / "out", images=images, text_encoder="hashing")
    assert "replace" in caplog.text
    ids, feat = files.read_features(files.feature_path(tmp_path / "out" / "toy", "toy", "image"))
    assert ids.tolist() == ["3"] and feat.shape == (1, 72)
