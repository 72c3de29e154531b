"""Item records read from ``<name>.items.jsonl``: one JSON object per line, one line per item.

Fields: ``item_id`` (raw token; an integer id is read as its decimal string), ``title``, ``brand``,
``categories`` (list of paths, one path, or their Python-literal string), ``description``, optional
``image`` (path relative to the file's directory) and optional ``attributes`` ({name: value}). Other
fields are ignored. Every error names the file, the line and the field.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recbole_neggen.data.files import read_jsonl
from recbole_neggen.encoders import clean_text, parse_categories

TEXT_FIELDS = ("title", "brand", "description")


@dataclass(frozen=True)
class ItemRecord:
    """One catalogue item, text already cleaned (HTML entities and tags removed)."""

    item_id: str
    title: str = ""
    brand: str = ""
    categories: tuple[str, ...] = ()
    description: str = ""
    image: Path | None = None
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def has_text(self) -> bool:
        """False when the item has neither title nor description (its text modality is missing)."""
        return bool(self.title or self.description)

    @property
    def category(self) -> str:
        """Leaf of the category path ('' when unknown)."""
        return self.categories[-1] if self.categories else ""

    def source_text(self, max_chars: int) -> str:
        """The item's text as the generator sees and edits it: labelled lines, description cut at a word
        boundary so that the whole text stays within ``max_chars``. '' when the item has no text."""
        if not self.has_text:
            return ""
        lines = [f"Title: {self.title}"] if self.title else []
        if self.brand:
            lines.append(f"Brand: {self.brand}")
        if self.categories:
            lines.append(f"Category: {' > '.join(self.categories)}")
        if self.attributes:
            lines.append("Attributes: " + "; ".join(f"{k}: {v}" for k, v in self.attributes.items()))
        head = "\n".join(lines)
        if self.description:
            room = max_chars - len(head) - len("\nDescription: ")
            description = self.description
            if len(description) > room:
                cut = description[: max(room, 0)]
                description = cut[: cut.rfind(" ")] if " " in cut else cut
            if description:
                head = f"{head}\nDescription: {description}" if head else f"Description: {description}"
        return head[:max_chars]


def _field_error(path: Path, line: int, name: str, message: str) -> ValueError:
    return ValueError(f"{path}:{line}: field {name!r} {message}")


def _record(obj: Any, path: Path, line: int) -> ItemRecord:
    if "item_id" not in obj:
        raise _field_error(path, line, "item_id", "is missing")
    item_id = obj["item_id"]
    if isinstance(item_id, bool) or not isinstance(item_id, (str, int)) or str(item_id).strip() == "":
        raise _field_error(path, line, "item_id", f"must be a non-empty string or an integer, got {item_id!r}")
    texts: dict[str, str] = {}
    for name in TEXT_FIELDS:
        value = obj.get(name)
        if value is not None and not isinstance(value, str):
            raise _field_error(path, line, name, f"must be a string, got {type(value).__name__}")
        texts[name] = clean_text(value)
    categories = obj.get("categories")
    if categories is not None and not isinstance(categories, (str, list)):
        raise _field_error(path, line, "categories", f"must be a list or a string, got {type(categories).__name__}")
    attributes = obj.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise _field_error(path, line, "attributes", f"must be an object {{name: value}}, got {type(attributes).__name__}")
    for name, value in attributes.items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise _field_error(path, line, f"attributes.{name}", f"must be a string or a number, got {value!r}")
    image = obj.get("image")
    if image is not None:
        if not isinstance(image, str) or not image:
            raise _field_error(path, line, "image", f"must be a non-empty path string, got {image!r}")
        image = (path.parent / image).resolve()
        if not image.is_file():
            raise _field_error(path, line, "image", f"names a missing file: {image}")
    return ItemRecord(
        item_id=str(item_id).strip(),
        categories=tuple(parse_categories(categories)),
        image=image,
        attributes={clean_text(k): clean_text(str(v)) for k, v in attributes.items()},
        **texts,
    )


def load_items(path: str | Path) -> list[ItemRecord]:
    """Read an items.jsonl file -> records in file order. Blank lines are skipped; duplicate ids fail."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"items file not found: {path}")
    records: list[ItemRecord] = []
    first_line: dict[str, int] = {}
    for line_no, obj in read_jsonl(path):
        record = _record(obj, path, line_no)
        if record.item_id in first_line:
            raise _field_error(path, line_no, "item_id", f"{record.item_id!r} repeats line {first_line[record.item_id]}")
        first_line[record.item_id] = line_no
        records.append(record)
    if not records:
        raise ValueError(f"{path}: no item records")
    return records
