"""The prepared-dataset file layout, in one place.

``<root>/<name>/`` holds
- ``<name>.{train,valid,test}.inter``: tab separated, header ``user_id:token\\titem_id:token``;
- ``<name>.<modality>.npz``: ``ids`` (str [n], raw item tokens) and ``feat`` (float32 [n, dim]);
  items absent from the file have no feature for that modality;
- ``<name>.items.jsonl``: one item record per line (``item_id`` raw token str, title, brand,
  categories, description, optional image / attributes);
- ``<name>.prepare.json``: provenance (inputs with md5 and size, encoders, seed, counts, version).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

SPLITS = ("train", "valid", "test")
INTER_HEADER = "user_id:token\titem_id:token"
FORMAT_VERSION = 1


def split_path(directory: Path, name: str, split: str) -> Path:
    return Path(directory) / f"{name}.{split}.inter"


def feature_path(directory: Path, name: str, modality: str) -> Path:
    return Path(directory) / f"{name}.{modality}.npz"


def items_path(directory: Path, name: str) -> Path:
    return Path(directory) / f"{name}.items.jsonl"


def provenance_path(directory: Path, name: str) -> Path:
    return Path(directory) / f"{name}.prepare.json"


def is_prepared(directory: Path, name: str) -> bool:
    """True when all three split files and the provenance file exist."""
    return all(split_path(directory, name, s).is_file() for s in SPLITS) and provenance_path(directory, name).is_file()


def list_modalities(directory: Path, name: str) -> list[str]:
    """Modalities with a ``<name>.<modality>.npz`` file, sorted."""
    prefix = f"{name}."
    return sorted(p.name[len(prefix) : -len(".npz")] for p in Path(directory).glob(f"{name}.*.npz")
                  if "." not in p.name[len(prefix) : -len(".npz")])


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_splits(directory: Path, name: str, users: Sequence[str], items: Sequence[str], labels: np.ndarray) -> dict[str, int]:
    """Write the three atomic split files, rows in the given order; ``labels`` 0/1/2 = train/valid/test.

    Returns row counts per split.
    """
    labels = np.asarray(labels)
    counts = {}
    for code, split in enumerate(SPLITS):
        rows = np.flatnonzero(labels == code)
        body = "".join(f"{users[r]}\t{items[r]}\n" for r in rows)
        _atomic_write_text(split_path(directory, name, split), f"{INTER_HEADER}\n{body}")
        counts[split] = int(rows.size)
    return counts


def write_features(path: Path, ids: Sequence[str], feat: np.ndarray) -> None:
    """Save ``ids`` (str [n]) and ``feat`` (float32 [n, dim]) to ``path`` (.npz, no pickle)."""
    feat = np.asarray(feat, dtype=np.float32)
    ids_arr = np.asarray([str(i) for i in ids], dtype=np.str_)
    if feat.ndim != 2 or feat.shape[0] != ids_arr.shape[0]:
        raise ValueError(f"{path}: feat shape {feat.shape} does not match {ids_arr.shape[0]} ids")
    if not np.isfinite(feat).all():
        raise ValueError(f"{path}: refusing to write non-finite features")
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, ids=ids_arr, feat=feat)
    os.replace(tmp, path)


def read_features(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Load (ids str [n], feat [n, dim]) from a feature file; errors name the file."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = {"ids", "feat"} - set(data.files)
            if missing:
                raise ValueError(f"{path}: missing arrays {sorted(missing)} (has {data.files})")
            return data["ids"].astype(str), data["feat"]
    except (OSError, ValueError) as err:
        if str(path) in str(err):
            raise
        raise ValueError(f"{path}: cannot read feature file: {err}") from err


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Write records one JSON object per line; returns the count."""
    n = 0
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
    os.replace(tmp, path)
    return n


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object); a bad line raises ``ValueError`` naming file and line."""
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{lineno}: invalid JSON: {err}") from None
            if not isinstance(obj, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            yield lineno, obj


def file_fingerprint(path: Path) -> dict[str, Any]:
    """{path, size, md5} of a file (md5 streamed in 1 MiB blocks)."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"path": str(Path(path).resolve()), "size": Path(path).stat().st_size, "md5": digest.hexdigest()}


def read_provenance(directory: Path, name: str) -> dict[str, Any] | None:
    path = provenance_path(directory, name)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def write_provenance(directory: Path, name: str, record: dict[str, Any]) -> None:
    _atomic_write_text(provenance_path(directory, name), json.dumps(record, indent=2, sort_keys=True) + "\n")
