"""Shared fixtures. Tests run single-threaded, offline, each in its own working directory."""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import pytest  # noqa: E402

import recbole_neggen  # noqa: E402,F401  (applies the compat shims before any test imports recbole)


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path, monkeypatch):
    """RecBole writes ./log, ./saved ...: keep every test inside its own temporary directory."""
    monkeypatch.chdir(tmp_path)
    yield


@pytest.fixture
def write_atomic():
    """``write(directory, name, {"train": [(user, item), ...], "valid": ..., "test": ...})`` writes a fixed split."""

    def write(directory, name, splits):
        directory.mkdir(parents=True, exist_ok=True)
        for split, rows in splits.items():
            lines = ["user_id:token\titem_id:token"] + [f"{u}\t{i}" for u, i in rows]
            (directory / f"{name}.{split}.inter").write_text("\n".join(lines) + "\n")
        (directory / f"{name}.prepare.json").write_text('{"source": "hand-written test fixture"}\n')
        return directory

    return write
