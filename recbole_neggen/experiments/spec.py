"""Experiment spec files: found by name in ``properties/experiments/`` or by path, read as yaml, and
queried field by field with errors of the form ``<file>:<line>: <field>: <problem>``."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

from recbole_neggen.config import properties_dir

FieldPath = tuple[str | int, ...]
_MISSING = object()


class SpecError(ValueError):
    """A spec file is missing or malformed; the message names the file, the line and the field."""


def spec_dir() -> Path:
    """Directory of the packaged experiment specs (``properties/experiments``)."""
    return properties_dir() / "experiments"


def locate_spec(name_or_path: str, prefix: str) -> Path:
    """``name_or_path`` if it is a file, else ``<spec_dir>/<name>[.yaml]``.

    Raises:
        SpecError: listing the packaged specs whose name starts with ``prefix`` (``bench_`` / ``tune_``).
    """
    for candidate in (Path(name_or_path), spec_dir() / name_or_path, spec_dir() / f"{name_or_path}.yaml"):
        if candidate.is_file():
            return candidate.resolve()
    available = ", ".join(sorted(p.stem for p in spec_dir().glob(f"{prefix}*.yaml"))) or "(none)"
    raise SpecError(f"no spec {name_or_path!r}: not a file and not in {spec_dir()}; packaged: {available}")


def format_field(path: FieldPath) -> str:
    """``("space", "lr")`` -> ``space.lr``; ``("models", 1, "name")`` -> ``models[1].name``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "<top level>"


def _type_names(kinds: tuple[type, ...]) -> str:
    return " or ".join({dict: "a mapping", list: "a list"}.get(k, k.__name__) for k in kinds)


@dataclass(frozen=True)
class SpecFile:
    """A loaded spec: the parsed ``data`` and the yaml node tree (for line numbers)."""

    path: Path
    data: dict[str, Any]
    node: yaml.Node

    @classmethod
    def load(cls, path: str | Path) -> "SpecFile":
        """Parse ``path``; the top level must be a mapping."""
        path = Path(path)
        text = path.read_text()
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise SpecError(f"{path}: not valid yaml: {err}") from None
        if not isinstance(data, dict) or node is None:
            raise SpecError(f"{path}:1: <top level>: must be a mapping of fields, got {type(data).__name__}")
        return cls(path, data, node)

    @property
    def name(self) -> str:
        return self.path.stem

    def line(self, path: FieldPath) -> int:
        """1-based line of the deepest node of ``path`` present in the file."""
        node = self.node
        for part in path:
            child = None
            if isinstance(node, yaml.MappingNode):
                child = next((v for k, v in node.value if k.value == str(part)), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                child = node.value[part]
            if child is None:
                break
            node = child
        return node.start_mark.line + 1

    def error(self, path: FieldPath, problem: str) -> SpecError:
        """A :class:`SpecError` pointing at ``path``."""
        return SpecError(f"{self.path}:{self.line(path)}: {format_field(path)}: {problem}")

    def value(self, path: FieldPath, kinds: type | tuple[type, ...], default: Any = _MISSING) -> Any:
        """The value at ``path``, checked against ``kinds`` (bool is never an int here); ``default`` if absent."""
        current: Any = self.data
        for part in path:
            present = (isinstance(current, dict) and part in current) if isinstance(part, str) else (
                isinstance(current, list) and 0 <= part < len(current))
            if not present:
                if default is _MISSING:
                    raise self.error(path, "required field is missing")
                return default
            current = current[part]
        if current is None and default is not _MISSING:
            return default
        return self._checked(path, current, kinds if isinstance(kinds, tuple) else (kinds,))

    def items(self, path: FieldPath, kinds: type | tuple[type, ...], default: Any = _MISSING) -> list[Any]:
        """The list at ``path`` with every element checked against ``kinds``; ``default`` if absent."""
        kinds = kinds if isinstance(kinds, tuple) else (kinds,)
        return [self._checked((*path, i), v, kinds) for i, v in enumerate(self.value(path, list, default))]

    def _checked(self, path: FieldPath, value: Any, kinds: tuple[type, ...]) -> Any:
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise self.error(path, f"must be {_type_names(kinds)}, got {type(value).__name__} {value!r}")
        return value

    def check_keys(self, path: FieldPath, allowed: Iterable[str]) -> None:
        """Reject keys of the mapping at ``path`` (absent: nothing to check) outside ``allowed``: typos are errors."""
        allowed = list(allowed)
        mapping = self.value(path, dict, {}) if path else self.data
        for key in mapping:
            if key not in allowed:
                raise self.error((*path, key), f"unknown field; allowed: {', '.join(allowed)}")

    def resolve(self, relative: str) -> str:
        """A path written in the spec, made absolute relative to the spec file's directory."""
        return str((self.path.parent / relative).resolve())
