import pytest

from recbole_neggen.data import files
from recbole_neggen.data.locate import DatasetNotFoundError, prepared_dir


def test_existing_prepared_dir_is_returned(synthetic_root, tmp_path):
    assert prepared_dir("synthetic", tmp_path / "nothing", synthetic_root) == synthetic_root / "synthetic"


def test_synthetic_names_generated_on_demand(tmp_path):
    d = prepared_dir("synthetic-60", None, tmp_path)
    assert d == tmp_path / "synthetic-60" and files.is_prepared(d, "synthetic-60")
    ids, _ = files.read_features(files.feature_path(d, "synthetic-60", "text"))
    assert len(ids) == 60


def test_mmrec_source_prepared_from_data_path_or_env(mmrec_source, tmp_path, monkeypatch):
    src = mmrec_source(name="toy", items=False, text_feat=True)
    d = prepared_dir("toy", src.parent, tmp_path / "prep")
    assert d == tmp_path / "prep" / "toy" and files.list_modalities(d, "toy") == ["text"]
    monkeypatch.setenv("NEGGEN_DATA_PATH", str(src.parent))
    assert prepared_dir("toy", None, tmp_path / "prep2") == tmp_path / "prep2" / "toy"


def test_not_found_lists_every_path(tmp_path, monkeypatch):
    monkeypatch.setenv("NEGGEN_DATA_PATH", str(tmp_path / "env"))
    with pytest.raises(DatasetNotFoundError) as err:
        prepared_dir("baby", tmp_path / "cfg", tmp_path / "prep")
    msg = str(err.value)
    for path in (tmp_path / "prep" / "baby", tmp_path / "cfg" / "baby" / "baby.inter",
                 tmp_path / "env" / "baby" / "baby.inter"):
        assert str(path) in msg
    assert "github.com/enoche/MMRec" in msg and "NEGGEN_DATA_PATH" in msg and "data_path" in msg
