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


def write_atomic(directory, name, splits):
    """Write a fixed-split RecBole dataset: ``splits = {"train": [(user, item), ...], "valid": ..., "test": ...}``."""
    directory.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        lines = ["user_id:token\titem_id:token"] + [f"{u}\t{i}" for u, i in rows]
        (directory / f"{name}.{split}.inter").write_text("\n".join(lines) + "\n")
    return directory
