"""The negative bank on disk, append-only and crash-safe.

Directory layout:

- ``bank.jsonl``: one JSON line per item, appended per batch: ``{"item", "status": ok|partial|failed,
  "positive": {"text", "visual_description", "row"} | null, "analysis", "variants": [{"index", "modality":
  text|visual|both, "text", "visual_description", "changes": [{modality, name, from, to}], "row"}],
  "log": [{"stage", "outcome": parsed|repaired|rejected, ...}]}``. Failed items keep their reasons.
- ``<space>.f32``: raw little-endian float32 rows [n_rows, dim] per feature space; ``row`` above indexes
  them (the positive's row, then its variants'). Only items with an accepted variant have rows.
- ``provenance.json``: ``settings`` (backend, model, templates, seed, K, dataset hash, encoders...),
  ``spaces`` (dims), cumulative ``stats`` (parsed / repaired / rejected per stage, per variant type).

A batch is committed as: feature rows (fsync), then its JSON lines (fsync), then provenance (atomic
replace). On resume a torn last line and feature rows past the last committed line are cut, so a kill -9
loses at most the batch in flight. Reopening with other settings is an error.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from recbole_neggen.generation.templates import TAGS

BANK_FILE = "bank.jsonl"
PROVENANCE_FILE = "provenance.json"
FORMAT = 1


def entry_rows(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The records of an entry that own a feature row, in row order: the positive, then each variant."""
    if not entry["variants"]:
        return []
    return [entry["positive"], *entry["variants"]]


def tally(entries: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Cumulative counters over bank lines: item status, answer outcomes per stage, variants per type."""
    items: Counter[str] = Counter()
    answers: dict[str, Counter[str]] = {stage: Counter() for stage in ("analyse", "intervene")}
    variants: dict[str, Counter[str]] = {tag: Counter() for tag in TAGS}
    for entry in entries:
        items[entry["status"]] += 1
        for event in entry["log"]:
            if event["stage"] in answers:
                answers[event["stage"]][event["outcome"]] += 1
            if event["stage"] == "intervene":
                variants[event["tag"]]["rejected" if event["outcome"] == "rejected" else "accepted"] += 1
    return {
        "items": {k: items[k] for k in ("ok", "partial", "failed")},
        "answers": {s: {k: c[k] for k in ("parsed", "repaired", "rejected")} for s, c in answers.items()},
        "variants": {t: {k: c[k] for k in ("accepted", "rejected")} for t, c in variants.items()},
    }


def _write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(obj, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _read_lines(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Committed lines of bank.jsonl and the byte length they fill. A torn tail (bytes after the last
    newline, or an unreadable last line) is left out; an unreadable line before it is an error."""
    if not path.is_file():
        return [], 0
    data = path.read_bytes()
    lines = data[: data.rfind(b"\n") + 1].split(b"\n")[:-1]
    entries: list[dict[str, Any]] = []
    good = 0
    for number, raw in enumerate(lines, start=1):
        try:
            entries.append(json.loads(raw))
        except json.JSONDecodeError as exc:
            if number == len(lines):
                break
            raise ValueError(f"{path}:{number}: invalid bank line ({exc.msg})") from None
        good += len(raw) + 1
    return entries, good


def _settings_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k)!r} (bank) != {new.get(k)!r} (now)" for k in keys if old.get(k) != new.get(k)]


class BankWriter:
    """Appends batches to a bank directory; created by :meth:`open`, which also resumes."""

    def __init__(self, directory: Path, provenance: dict[str, Any], entries: list[dict[str, Any]]) -> None:
        self.directory = directory
        self.provenance = provenance
        self.done = {e["item"] for e in entries}
        self.n_rows = sum(len(entry_rows(e)) for e in entries)
        self._entries_stats = tally(entries)

    @classmethod
    def open(cls, directory: str | Path, settings: dict[str, Any]) -> "BankWriter":
        """Create or resume the bank in ``directory``; fails if it was built with other settings."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        settings = json.loads(json.dumps(settings))
        prov_path, bank_path = directory / PROVENANCE_FILE, directory / BANK_FILE
        if prov_path.is_file():
            provenance = json.loads(prov_path.read_text(encoding="utf-8"))
            diff = _settings_diff(provenance.get("settings", {}), settings)
            if diff:
                raise ValueError(f"{directory} holds a bank built with other settings; write to another "
                                 f"directory or delete it. Differences: " + "; ".join(diff))
        elif bank_path.exists():
            raise ValueError(f"{bank_path} exists without {PROVENANCE_FILE}: not a bank this code wrote")
        else:
            provenance = {"format": FORMAT, "settings": settings, "spaces": {}, "stats": tally([])}
            _write_json_atomic(prov_path, provenance)
        entries, good = _read_lines(bank_path)
        if bank_path.is_file() and bank_path.stat().st_size != good:
            with bank_path.open("r+b") as handle:
                handle.truncate(good)
        writer = cls(directory, provenance, entries)
        for space, meta in provenance["spaces"].items():
            path = directory / f"{space}.f32"
            need = writer.n_rows * meta["dim"] * 4
            size = path.stat().st_size if path.is_file() else 0
            if size < need:
                raise ValueError(f"{path}: {size} bytes, but {BANK_FILE} refers to {writer.n_rows} rows "
                                 f"({need} bytes): the bank is corrupt")
            if size > need:
                with path.open("r+b") as handle:
                    handle.truncate(need)
        return writer

    def append(self, entries: Sequence[dict[str, Any]], features: dict[str, np.ndarray]) -> None:
        """Commit one batch. ``features[space]``: float32 [rows, dim] for :func:`entry_rows` of
        ``entries`` in order; row numbers are assigned here."""
        n_new = sum(len(entry_rows(e)) for e in entries)
        spaces = self.provenance["spaces"]
        for space, rows in features.items():
            if rows.shape[0] != n_new:
                raise ValueError(f"space {space!r}: {rows.shape[0]} feature rows for {n_new} bank rows")
            if spaces.get(space, {"dim": rows.shape[1]})["dim"] != rows.shape[1]:
                raise ValueError(f"space {space!r}: dimension {rows.shape[1]}, the bank holds {spaces[space]['dim']}")
            spaces[space] = {"dim": int(rows.shape[1])}
        row = self.n_rows
        for entry in entries:
            for record in entry_rows(entry):
                record["row"] = row
                row += 1
        for space, rows in features.items():
            with (self.directory / f"{space}.f32").open("ab") as handle:
                handle.write(np.ascontiguousarray(rows, dtype="<f4").tobytes())
                handle.flush()
                os.fsync(handle.fileno())
        with (self.directory / BANK_FILE).open("a", encoding="utf-8") as handle:
            handle.write("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries))
            handle.flush()
            os.fsync(handle.fileno())
        self.n_rows = row
        self.done.update(e["item"] for e in entries)
        self._entries_stats = _merge(self._entries_stats, tally(entries))
        self.provenance["stats"] = self._entries_stats
        _write_json_atomic(self.directory / PROVENANCE_FILE, self.provenance)


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Add nested counters."""
    return {k: _merge(v, b[k]) if isinstance(v, dict) else v + b[k] for k, v in a.items()}


# ------------------------------------------------------------------------------------------ reading
@dataclass(frozen=True)
class Variant:
    """One accepted generated negative."""

    index: int  # position among the item's K planned variants
    modality: str  # text | visual | both: which modality it edits
    text: str
    visual_description: str
    changes: tuple[dict[str, str], ...]
    row: int


@dataclass(frozen=True)
class BankEntry:
    """One item of the bank: its source (positive) fields, accepted variants and the answer log."""

    item: str
    status: str
    text: str | None
    visual_description: str | None
    row: int | None
    analysis: dict[str, Any] | None
    variants: tuple[Variant, ...]
    log: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class AlignedNegatives:
    """Bank features aligned to a token list: ``positive`` [n, dim], ``negatives`` [n, K, dim],
    ``mask`` [n, K] (True where a variant exists), ``modality`` [n, K] int8 (index into TAGS, -1 none)."""

    positive: np.ndarray
    negatives: np.ndarray
    mask: np.ndarray
    modality: np.ndarray


class NegativeBank:
    """Read-only view of a bank directory (see the module docstring)."""

    def __init__(self, directory: Path, provenance: dict[str, Any], entries: list[dict[str, Any]]) -> None:
        self.directory = directory
        self.provenance = provenance
        self._entries = [_entry(e) for e in entries]
        self._by_item = {e.item: e for e in self._entries}
        self.n_rows = sum(len(entry_rows(e)) for e in entries)
        self._matrices: dict[str, np.ndarray] = {}

    @classmethod
    def open(cls, directory: str | Path) -> "NegativeBank":
        directory = Path(directory)
        prov_path = directory / PROVENANCE_FILE
        if not prov_path.is_file():
            raise FileNotFoundError(f"no negative bank in {directory} ({PROVENANCE_FILE} missing)")
        provenance = json.loads(prov_path.read_text(encoding="utf-8"))
        entries, _ = _read_lines(directory / BANK_FILE)
        return cls(directory, provenance, entries)

    @property
    def settings(self) -> dict[str, Any]:
        return self.provenance["settings"]

    @property
    def stats(self) -> dict[str, Any]:
        return self.provenance["stats"]

    @property
    def k(self) -> int:
        return int(self.settings["k"])

    @property
    def spaces(self) -> tuple[str, ...]:
        return tuple(sorted(self.provenance["spaces"]))

    def __len__(self) -> int:
        return len(self._entries)

    def items(self) -> list[BankEntry]:
        """Every item written so far, in bank order (failed ones included)."""
        return list(self._entries)

    def entry(self, item: str) -> BankEntry | None:
        return self._by_item.get(item)

    def matrix(self, space: str) -> np.ndarray:
        """All rows of one space: float32 [n_rows, dim] (memory-mapped file contents)."""
        if space not in self.provenance["spaces"]:
            raise ValueError(f"unknown feature space {space!r}; the bank has {list(self.spaces)}")
        if space not in self._matrices:
            dim = self.provenance["spaces"][space]["dim"]
            path = self.directory / f"{space}.f32"
            need = self.n_rows * dim
            data = np.fromfile(path, dtype="<f4", count=need) if need else np.zeros(0, np.float32)
            if data.size != need:
                raise ValueError(f"{path}: holds {data.size // dim} rows, the bank refers to {self.n_rows}")
            self._matrices[space] = data.reshape(self.n_rows, dim)
        return self._matrices[space]

    def features(self, space: str) -> dict[str, np.ndarray]:
        """item token -> its variants' features [k_i, dim] (items with >= 1 accepted variant)."""
        mat = self.matrix(space)
        return {e.item: mat[[v.row for v in e.variants]] for e in self._entries if e.variants}

    def positive_features(self, space: str) -> dict[str, np.ndarray]:
        """item token -> the positive's own feature [dim] in the same space (for m+ - m-)."""
        mat = self.matrix(space)
        return {e.item: mat[e.row] for e in self._entries if e.row is not None}

    @property
    def modalities(self) -> dict[str, tuple[str, ...]]:
        """item token -> variant types (text | visual | both), aligned with :meth:`features` rows."""
        return {e.item: tuple(v.modality for v in e.variants) for e in self._entries if e.variants}

    def aligned(self, space: str, tokens: Sequence[str]) -> AlignedNegatives:
        """Features for ``tokens`` in order (unknown or failed items: zeros, mask False)."""
        mat = self.matrix(space)
        n, k, dim = len(tokens), self.k, mat.shape[1]
        positive = np.zeros((n, dim), np.float32)
        negatives = np.zeros((n, k, dim), np.float32)
        mask = np.zeros((n, k), bool)
        modality = np.full((n, k), -1, np.int8)
        for i, token in enumerate(tokens):
            entry = self._by_item.get(token)
            if entry is None or entry.row is None:
                continue
            positive[i] = mat[entry.row]
            for j, variant in enumerate(entry.variants):
                negatives[i, j] = mat[variant.row]
                mask[i, j] = True
                modality[i, j] = TAGS.index(variant.modality)
        return AlignedNegatives(positive, negatives, mask, modality)


def _entry(raw: dict[str, Any]) -> BankEntry:
    positive = raw.get("positive") or {}
    variants = tuple(Variant(v["index"], v["modality"], v["text"], v["visual_description"],
                             tuple(v["changes"]), v["row"]) for v in raw["variants"])
    return BankEntry(raw["item"], raw["status"], positive.get("text"), positive.get("visual_description"),
                     positive.get("row"), raw.get("analysis"), variants, tuple(raw["log"]))
