"""Prepare a dataset into the layout of :mod:`recbole_neggen.data.files` (idempotent, resumable).

Inputs: MMRec format, raw Amazon 2014 files, or the synthetic generator; optionally a folder of item
images. CLI: ``python -m recbole_neggen.data.prepare <name> --source DIR [--out DIR] [--format ...]``.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import fcntl
import gzip
import hashlib
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd

from recbole_neggen.data import files
from recbole_neggen.data.split import k_core, mmrec_split
from recbole_neggen.encoders import (TEXT_ENCODERS, Encoder, ImageEncoder, clean_text, encode_resumable, item_text,
                                     parse_categories)

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
TEXT_FIELDS = ("title", "brand", "description")


@dataclass
class PrepareResult:
    """Where a dataset was prepared, whether the run was a no-op, and its provenance record."""

    directory: Path
    skipped: bool
    provenance: dict[str, Any] = field(default_factory=dict)


@dataclass
class MMRecSource:
    """Paths of an MMRec-format dataset folder (``image_feat``/``text_feat``/``items`` optional)."""

    inter: Path
    item_map: Path
    user_map: Path
    text_feat: Path | None
    image_feat: Path | None
    items: Path | None

    @classmethod
    def find(cls, source: Path, name: str) -> "MMRecSource":
        inter = source / f"{name}.inter"
        for required in (inter, source / "i_id_mapping.csv", source / "u_id_mapping.csv"):
            if not required.is_file():
                raise FileNotFoundError(f"MMRec format needs {required} (not found)")
        optional = {k: source / f for k, f in
                    (("text_feat", "text_feat.npy"), ("image_feat", "image_feat.npy"), ("items", "items.jsonl"))}
        return cls(inter, source / "i_id_mapping.csv", source / "u_id_mapping.csv",
                   **{k: (p if p.is_file() else None) for k, p in optional.items()})

    def paths(self) -> list[Path]:
        return [p for p in (self.inter, self.item_map, self.user_map, self.text_feat, self.image_feat, self.items) if p]


# ------------------------------------------------------------------------------------ validation
def _int_column(df: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    """Column as int64; a non-integer cell raises naming file, line and value."""
    values = pd.to_numeric(df[column], errors="coerce")
    bad = values.isna() | (values != values.round())
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"{path}:{row + 2}: column {column!r} is not an integer: {df[column].iloc[row]!r}")
    return values.to_numpy().astype(np.int64)


def _read_table(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: cannot parse as a tab-separated table: {err}") from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; header is {list(df.columns)}")
    return df


def read_mmrec_inter(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``userID``/``itemID``/``x_label`` -> (users int64 [N], items int64 [N], labels int8 [N]), checked."""
    df = _read_table(path, ("userID", "itemID", "x_label"))
    users, items, labels = (_int_column(df, c, path) for c in ("userID", "itemID", "x_label"))
    bad = np.flatnonzero(~np.isin(labels, (0, 1, 2)))
    if bad.size:
        raise ValueError(f"{path}:{bad[0] + 2}: x_label must be 0, 1 or 2, got {labels[bad[0]]}")
    dup = pd.DataFrame({"u": users, "i": items}).duplicated(keep="first").to_numpy()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        first = int(np.flatnonzero((users == users[row]) & (items == items[row]))[0])
        raise ValueError(f"{path}:{row + 2}: duplicate interaction user {users[row]} item {items[row]} "
                         f"(first at line {first + 2}); {int(dup.sum())} duplicates in total")
    return users, items, labels.astype(np.int8)


def read_id_map(path: Path, raw_col: str, id_col: str) -> dict[int, str]:
    """Mapping file -> {id: raw id}; ids and raw ids must be unique."""
    df = _read_table(path, (raw_col, id_col))
    ids = _int_column(df, id_col, path)
    for col, values in ((id_col, pd.Series(ids)), (raw_col, df[raw_col])):
        dup = values.duplicated().to_numpy()
        if dup.any():
            row = int(np.flatnonzero(dup)[0])
            raise ValueError(f"{path}:{row + 2}: duplicate {col} {values.iloc[row]!r}")
    return dict(zip(ids.tolist(), df[raw_col].tolist()))


def _check_known(ids: np.ndarray, known: dict[int, str], path: Path, what: str, mapping: Path) -> None:
    bad = np.flatnonzero(~np.isin(ids, np.fromiter(known, dtype=np.int64, count=len(known))))
    if bad.size:
        raise ValueError(f"{path}:{bad[0] + 2}: {what} {ids[bad[0]]} is not in {mapping} ({bad.size} such rows)")


def read_row_features(path: Path, n_items: int) -> np.ndarray:
    """MMRec ``*_feat.npy`` (row r = item id r) -> float32 [n_items, dim], checked."""
    try:
        feat = np.load(path, allow_pickle=False)
    except ValueError as err:
        raise ValueError(f"{path}: cannot load as a numeric array: {err}") from None
    if feat.ndim != 2:
        raise ValueError(f"{path}: expected a 2-d array [n_items, dim], got shape {feat.shape}")
    if feat.shape[0] != n_items:
        raise ValueError(f"{path}: {feat.shape[0]} rows but the item mapping has {n_items} items")
    if not np.issubdtype(feat.dtype, np.floating):
        raise ValueError(f"{path}: dtype {feat.dtype} is not floating point")
    bad = np.flatnonzero(~np.isfinite(feat).all(axis=1))
    if bad.size:
        raise ValueError(f"{path}: row {bad[0]} (item id {bad[0]}) has NaN/inf; {bad.size} bad rows")
    return feat.astype(np.float32)


def item_record(raw: dict[str, Any], token: str) -> dict[str, Any]:
    """Normalise a source item dict to the prepared ``items.jsonl`` schema (cleaned text fields).

    Extra source fields (asin, price, imUrl, attributes, ...) are kept as they are.
    """
    rec = {k: v for k, v in raw.items() if k not in ("item_id", "itemID", *TEXT_FIELDS, "categories")}
    rec = {"item_id": token, **{f: clean_text(raw.get(f)) for f in TEXT_FIELDS},
           "categories": parse_categories(raw.get("categories")), **rec}
    return rec


def read_mmrec_items(path: Path, id_map: dict[int, str]) -> dict[int, dict[str, Any]]:
    """``items.jsonl`` (integer ``item_id``, optional ``asin``) -> {item id: record}, checked."""
    records: dict[int, dict[str, Any]] = {}
    for lineno, obj in files.read_jsonl(path):
        if "item_id" not in obj:
            raise ValueError(f"{path}:{lineno}: missing field 'item_id'")
        try:
            iid = int(obj["item_id"])
        except (TypeError, ValueError):
            raise ValueError(f"{path}:{lineno}: item_id {obj['item_id']!r} is not an integer") from None
        if iid not in id_map:
            raise ValueError(f"{path}:{lineno}: item_id {iid} is not in the item mapping")
        if iid in records:
            raise ValueError(f"{path}:{lineno}: duplicate item_id {iid}")
        if obj.get("asin") not in (None, "", id_map[iid]):
            raise ValueError(f"{path}:{lineno}: asin {obj['asin']!r} != mapping {id_map[iid]!r} for item {iid}")
        bad = [f for f in TEXT_FIELDS if not isinstance(obj.get(f, ""), str)]
        if bad:
            raise ValueError(f"{path}:{lineno}: field(s) {bad} must be strings")
        records[iid] = obj
    return records


# ------------------------------------------------------------------------------------- encoding
def _digest(values: Sequence[str]) -> str:
    h = hashlib.sha1()
    for v in values:
        h.update(v.encode())
        h.update(b"\0")
    return h.hexdigest()


def encode_items(encoder: Encoder, ids: Sequence[str], inputs: Sequence[Any], path: Path, work_root: Path,
                 modality: str, sort_by_length: bool = False) -> None:
    """Encode ``inputs`` (texts or images) resumably and write ``path`` with ``ids``.

    ``sort_by_length`` (texts): encode longest first, so each chunk's batches carry little padding;
    the file then lists ids in that order (rows are keyed by id, never by position).
    """
    if sort_by_length:
        order = sorted(range(len(inputs)), key=lambda k: -len(inputs[k]))
        ids, inputs = [ids[k] for k in order], [inputs[k] for k in order]
    key = _digest([encoder.name, *ids, *map(str, inputs)])
    work = work_root / modality
    feat = encode_resumable(lambda chunk: encoder.encode(chunk, show_progress=False), list(inputs), work, key,
                            desc=f"encode {modality}")
    if len(ids):
        files.write_features(path, ids, feat)
    shutil.rmtree(work, ignore_errors=True)
    with contextlib.suppress(OSError):
        work_root.rmdir()  # only when no other modality is still in progress there


def find_images(folder: Path, tokens: Sequence[str], aliases: dict[str, str] | None = None) -> dict[str, Path]:
    """{item token: image file} for files named ``<token>.<ext>`` (or ``<alias>.<ext>``, e.g. an ASIN)."""
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    known = set(tokens)
    alias = aliases or {}
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        token = path.stem if path.stem in known else alias.get(path.stem)
        if token is not None:
            found.setdefault(token, path)
    return found


# ----------------------------------------------------------------------------------- the writer
@dataclass
class Tables:
    """One dataset in MMRec id space, ready to write: interactions, item records, feature sources."""

    users: np.ndarray                    # int64 [N] user ids
    items: np.ndarray                    # int64 [N] item ids
    labels: np.ndarray                   # int8 [N] 0/1/2
    item_ids: list[int]                  # every known item id (mapping order)
    item_alias: dict[int, str]           # item id -> raw source id (ASIN)
    records: dict[int, dict[str, Any]]   # item id -> source record (may be empty)
    row_features: dict[str, Path] = field(default_factory=dict)  # modality -> *_feat.npy (row r = id r)


def _write_records(tables: Tables, out_dir: Path, name: str, image_files: dict[str, Path]) -> int:
    """items.jsonl in the prepared schema; ``image`` is the image path relative to ``out_dir``."""
    def record(iid: int) -> dict[str, Any]:
        rec = item_record(tables.records[iid], str(iid))
        if str(iid) in image_files:
            rec["image"] = os.path.relpath(image_files[str(iid)], out_dir)
        return rec

    return files.write_jsonl(files.items_path(out_dir, name), (record(i) for i in tables.item_ids if i in tables.records))


def _encode_texts(tables: Tables, out_dir: Path, name: str, text_encoder: str) -> dict[str, Any]:
    """Text features from the item records; items with no title and no description are missing."""
    texts = {str(i): item_text(tables.records[i]) for i in tables.item_ids if i in tables.records}
    present = {i: t for i, t in texts.items() if t is not None}
    missing = len(tables.item_ids) - len(present)
    if missing:
        logger.info("%d of %d items have no title and no description: text feature missing",
                    missing, len(tables.item_ids))
    encoder = TEXT_ENCODERS.get(text_encoder)()
    encode_items(encoder, list(present), list(present.values()), files.feature_path(out_dir, name, "text"),
                 out_dir / ".work", "text", sort_by_length=True)
    return {"source": "items.jsonl", "encoder": encoder.name, "count": len(present), "missing": missing,
            "dim": encoder.dim}


def _encode_images(tables: Tables, out_dir: Path, name: str, images: Path, image_files: dict[str, Path],
                   image_encoder: str | None) -> dict[str, Any]:
    """Image features for the files found in ``images`` (named by item id or ASIN)."""
    encoder = ImageEncoder(image_encoder)
    ids = sorted(image_files, key=int)
    encode_items(encoder, ids, [image_files[i] for i in ids], files.feature_path(out_dir, name, "image"),
                 out_dir / ".work", "image")
    return {"source": str(images), "encoder": encoder.name,
            "count": len(ids), "missing": len(tables.item_ids) - len(ids), "dim": encoder.dim}


def write_prepared(tables: Tables, out_dir: Path, name: str, text_encoder: str, images: Path | None,
                   image_encoder: str | None) -> dict[str, Any]:
    """Write splits, items.jsonl and features; returns counts for the provenance record.

    Users with no training interaction are dropped (as MMRec does), with a warning. Text features
    come from ``text_feat.npy`` if given, else from the item records; image features from
    ``image_feat.npy``, replaced by the encoded ``images`` folder when one is given.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    keep = np.isin(tables.users, tables.users[tables.labels == 0])
    dropped = int(np.unique(tables.users[~keep]).size)
    if dropped:
        logger.warning("dropping %d users with no training interaction (%d rows), as MMRec does",
                       dropped, int((~keep).sum()))
    users, items, labels = tables.users[keep], tables.items[keep], tables.labels[keep]
    counts: dict[str, Any] = {"splits": files.write_splits(out_dir, name, users.astype(str), items.astype(str), labels),
                              "users": int(np.unique(users).size), "items": int(np.unique(items).size),
                              "dropped_users": dropped}
    image_files = {} if images is None else find_images(
        images, [str(i) for i in tables.item_ids], {v: str(k) for k, v in tables.item_alias.items()})
    if tables.records:
        counts["item_records"] = _write_records(tables, out_dir, name, image_files)
    features: dict[str, Any] = {}
    n_items = len(tables.item_ids)
    for modality, path in tables.row_features.items():
        if modality == "image" and images is not None:
            logger.warning("--images given: image features from %s replace %s", images, path)
            continue
        feat = read_row_features(path, n_items)
        files.write_features(files.feature_path(out_dir, name, modality), [str(i) for i in range(n_items)], feat)
        features[modality] = {"source": str(path), "count": n_items, "dim": int(feat.shape[1])}
    if "text" not in features and tables.records:
        features["text"] = _encode_texts(tables, out_dir, name, text_encoder)
    if images is not None:
        features["image"] = _encode_images(tables, out_dir, name, images, image_files, image_encoder)
    if not features:
        logger.warning("%s: no feature files and no item texts: the dataset has no modality", name)
    counts["features"] = features
    return counts


@contextlib.contextmanager
def _exclusive(out_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out_dir`` (parallel runs preparing one dataset wait for each other)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / ".prepare.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_cached(out_dir: Path, name: str, key: dict[str, Any], build: Callable[[], dict[str, Any]],
               force: bool = False) -> PrepareResult:
    """Run ``build`` unless ``out_dir`` already holds this dataset prepared from the same ``key``.

    A rebuild first removes the provenance file and every ``<name>.*.npz`` in ``out_dir``, so an
    interrupted run never looks prepared; chunks of features already encoded are reused.
    """
    key = {**key, "version": files.FORMAT_VERSION}
    with _exclusive(out_dir):
        old = files.read_provenance(out_dir, name)
        if not force and old is not None and old.get("key") == key and files.is_prepared(out_dir, name):
            logger.info("%s is up to date in %s (same inputs and settings): nothing to do", name, out_dir)
            return PrepareResult(out_dir, True, old)
        files.provenance_path(out_dir, name).unlink(missing_ok=True)
        for stale in out_dir.glob(f"{name}.*.npz"):
            stale.unlink()
        record = {"name": name, "key": key, "counts": build()}
        files.write_provenance(out_dir, name, record)
    logger.info("prepared %s in %s: %s", name, out_dir, record["counts"])
    return PrepareResult(out_dir, False, record)


def _image_key(images: Path | None, image_encoder: str | None) -> dict[str, Any] | None:
    if images is None:
        return None
    listing = sorted((p.name, p.stat().st_size) for p in Path(images).iterdir() if p.is_file())
    return {"folder": str(Path(images).resolve()), "listing": _digest([f"{n}:{s}" for n, s in listing]),
            "encoder": str(image_encoder) if image_encoder else "pixel-stats-v1"}


# ------------------------------------------------------------------------------------- formats
def prepare_mmrec(
    name: str, source: str | Path, out_root: str | Path, *, images: str | Path | None = None,
    image_encoder: str | None = None, text_encoder: str = "minilm",
    force: bool = False,
) -> PrepareResult:
    """MMRec folder (``<name>.inter`` + mappings [+ feats, items.jsonl]) -> ``<out_root>/<name>/``."""
    src = MMRecSource.find(Path(source), name)
    images = Path(images) if images else None
    key = {"format": "mmrec", "inputs": [files.file_fingerprint(p) for p in src.paths()],
           "images": _image_key(images, image_encoder),
           "text_encoder": None if src.text_feat or not src.items else text_encoder}

    def build() -> dict[str, Any]:
        users, items, labels = read_mmrec_inter(src.inter)
        item_map = read_id_map(src.item_map, "asin", "itemID")
        user_map = read_id_map(src.user_map, "user_id", "userID")
        _check_known(users, user_map, src.inter, "userID", src.user_map)
        _check_known(items, item_map, src.inter, "itemID", src.item_map)
        item_ids = sorted(item_map)
        row_feats = {m: p for m, p in (("text", src.text_feat), ("image", src.image_feat)) if p}
        if row_feats and item_ids != list(range(len(item_ids))):
            raise ValueError(f"{src.item_map}: itemID must be 0..n-1 when *_feat.npy files are given")
        records = read_mmrec_items(src.items, item_map) if src.items else {}
        tables = Tables(users, items, labels, item_ids, item_map, records, row_feats)
        return write_prepared(tables, Path(out_root) / name, name, text_encoder, images, image_encoder)

    return run_cached(Path(out_root) / name, name, key, build, force)


def _open_text(path: Path) -> Iterator[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        yield from f


def read_loose_json(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Lines of strict JSON or Python-literal dicts (Amazon 2014 meta) -> (line number, dict)."""
    for lineno, line in enumerate(_open_text(path), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            try:
                obj = ast.literal_eval(line)
            except (ValueError, SyntaxError):
                raise ValueError(f"{path}:{lineno}: neither JSON nor a Python literal") from None
        if not isinstance(obj, dict):
            raise ValueError(f"{path}:{lineno}: expected an object, got {type(obj).__name__}")
        yield lineno, obj


def find_amazon_files(source: Path, name: str) -> tuple[Path, Path]:
    """(reviews_<Cat>_5.json[.gz], meta_<Cat>.json[.gz]); <Cat> must match ``name`` if several exist."""
    norm = lambda s: re.sub(r"[^a-z0-9]", "", s.lower())  # noqa: E731
    reviews = sorted(source.glob("reviews_*_5.json*"))
    cats = {re.match(r"reviews_(.+)_5\.json", p.name).group(1): p for p in reviews}
    if len(cats) > 1:
        cats = {c: p for c, p in cats.items() if norm(c) == norm(name)}
    if len(cats) != 1:
        raise FileNotFoundError(f"expected one reviews_<Cat>_5.json(.gz) in {source} matching {name!r}, "
                                f"found {[p.name for p in reviews]}")
    (cat, review_path), = cats.items()
    metas = sorted(source.glob(f"meta_{cat}.json*"))
    if not metas:
        raise FileNotFoundError(f"meta_{cat}.json(.gz) not found in {source}")
    return review_path, metas[0]


def prepare_amazon(
    name: str, source: str | Path, out_root: str | Path, *, seed: int = 999, core: int = 5,
    images: str | Path | None = None, image_encoder: str | None = None,
    text_encoder: str = "minilm", force: bool = False,
) -> PrepareResult:
    """Raw Amazon 2014 -> k-core filter, ids in first-seen order, seeded MMRec split; also writes MMRec
    files (``<name>.inter``, ``i_id_mapping.csv``, ``u_id_mapping.csv``) next to the prepared ones."""
    review_path, meta_path = find_amazon_files(Path(source), name)
    images = Path(images) if images else None
    out_dir = Path(out_root) / name
    key = {"format": "amazon", "inputs": [files.file_fingerprint(p) for p in (review_path, meta_path)],
           "seed": seed, "core": core, "images": _image_key(images, image_encoder), "text_encoder": text_encoder}

    def build() -> dict[str, Any]:
        raw_u, raw_i = [], []
        for lineno, obj in read_loose_json(review_path):
            if not isinstance(obj.get("reviewerID"), str) or not isinstance(obj.get("asin"), str):
                raise ValueError(f"{review_path}:{lineno}: needs string fields 'reviewerID' and 'asin'")
            raw_u.append(obj["reviewerID"])
            raw_i.append(obj["asin"])
        df = pd.DataFrame({"u": raw_u, "i": raw_i}).drop_duplicates(keep="first")
        keep = k_core(df["u"].to_numpy(), df["i"].to_numpy(), core)
        df = df[keep]
        if df.empty:
            raise ValueError(f"{review_path}: nothing left after {core}-core filtering")
        u_codes, u_raw = pd.factorize(df["u"])
        i_codes, i_raw = pd.factorize(df["i"])
        order = np.argsort(u_codes, kind="stable")
        users, items = u_codes[order].astype(np.int64), i_codes[order].astype(np.int64)
        labels = mmrec_split(users, seed)
        out_dir.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"userID": users, "itemID": items, "x_label": labels}).to_csv(
            out_dir / f"{name}.inter", sep="\t", index=False)
        pd.DataFrame({"asin": i_raw, "itemID": range(len(i_raw))}).to_csv(out_dir / "i_id_mapping.csv", sep="\t", index=False)
        pd.DataFrame({"user_id": u_raw, "userID": range(len(u_raw))}).to_csv(out_dir / "u_id_mapping.csv", sep="\t", index=False)
        asin_to_id = {a: k for k, a in enumerate(i_raw)}
        records = {}
        for lineno, obj in read_loose_json(meta_path):
            iid = asin_to_id.get(obj.get("asin"))
            if iid is not None and iid not in records:
                records[iid] = obj
        logger.info("%d of %d items have metadata in %s", len(records), len(i_raw), meta_path)
        tables = Tables(users, items, labels, list(range(len(i_raw))), dict(enumerate(i_raw)), records)
        return write_prepared(tables, out_dir, name, text_encoder, images, image_encoder)

    return run_cached(out_dir, name, key, build, force)


def prepare(name: str, source: str | Path | None, out_root: str | Path = "dataset", fmt: str = "mmrec",
            **kwargs: Any) -> PrepareResult:
    """Dispatch on ``fmt`` (mmrec | amazon | synthetic); kwargs go to the format's function."""
    if fmt == "synthetic":
        from recbole_neggen.data.synthetic import make_synthetic

        return make_synthetic(Path(out_root), name=name, **kwargs)
    if source is None:
        raise ValueError(f"--source is required for format {fmt!r}")
    if fmt == "mmrec":
        return prepare_mmrec(name, source, out_root, **kwargs)
    if fmt == "amazon":
        return prepare_amazon(name, source, out_root, **kwargs)
    raise ValueError(f"unknown format {fmt!r}; choose mmrec, amazon or synthetic")


def main(argv: Sequence[str] | None = None) -> PrepareResult:
    """CLI entry point."""
    p = argparse.ArgumentParser(prog="python -m recbole_neggen.data.prepare", description=__doc__)
    p.add_argument("name", help="dataset name (file prefix), e.g. baby")
    p.add_argument("--source", help="input folder (not needed for --format synthetic)")
    p.add_argument("--out", default="dataset", help="prepared root; files go to <out>/<name>/ (default: dataset)")
    p.add_argument("--format", default="mmrec", choices=("mmrec", "amazon", "synthetic"))
    p.add_argument("--images", help="folder of item images named <item id>.<ext> (or <asin>.<ext>)")
    p.add_argument("--image-encoder", help="local transformers vision/CLIP model directory (default: pixel stats)")
    p.add_argument("--text-encoder", choices=TEXT_ENCODERS.names(),
                   help="default minilm (all-MiniLM-L6-v2, bf16 where the CPU runs it natively); "
                        "minilm-fp32 (exact float32); hashing (cheap, the synthetic default)")
    p.add_argument("--seed", type=int, help="split seed (amazon, synthetic)")
    p.add_argument("--n-users", type=int, help="synthetic: number of users")
    p.add_argument("--n-items", type=int, help="synthetic: number of items")
    p.add_argument("--force", action="store_true", help="rebuild even if the provenance says up to date")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    options = {"text_encoder": a.text_encoder, "seed": a.seed, "n_users": a.n_users, "n_items": a.n_items,
               "images": a.images, "image_encoder": a.image_encoder}
    allowed = {"mmrec": {"text_encoder", "images", "image_encoder"},
               "amazon": {"text_encoder", "seed", "images", "image_encoder"},
               "synthetic": {"text_encoder", "seed", "n_users", "n_items"}}[a.format]
    wrong = [k for k, v in options.items() if v is not None and k not in allowed]
    if wrong:
        p.error(f"option(s) {', '.join('--' + k.replace('_', '-') for k in wrong)} do not apply to --format {a.format}")
    if a.image_encoder and not a.images:
        p.error("--image-encoder needs --images")
    kwargs = {k: v for k, v in options.items() if v is not None}
    result = prepare(a.name, a.source, a.out, a.format, force=a.force, **kwargs)
    print(f"{'up to date' if result.skipped else 'prepared'}: {result.directory}")
    return result


if __name__ == "__main__":
    main()
