"""Typed, validated hyperparameters for negative-sampling strategies.

Each strategy owns one frozen dataclass derived from :class:`StrategyArgs`; every field is declared with
:func:`param`, which records its type and allowed range. ``from_dict`` rejects unknown keys and bad values
with a message that lists every allowed key, its range and its default.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Mapping, TypeVar

A = TypeVar("A", bound="StrategyArgs")


@dataclass(frozen=True)
class ParamSpec:
    """Type and closed range ``[low, high]`` (``None`` = unbounded) of one hyperparameter, or for ``str``
    the allowed ``choices``."""

    kind: type  # int, float or str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        name = self.kind.__name__
        if self.kind is str:
            return f"one of {list(self.choices)}"
        if self.low is not None and self.high is not None:
            return f"{name} in [{self.low}, {self.high}]"
        if self.low is not None:
            return f"{name} >= {self.low}"
        if self.high is not None:
            return f"{name} <= {self.high}"
        return f"finite {name}" if self.kind is float else name

    def coerce(self, key: str, value: Any) -> int | float | str:
        """Return ``value`` as ``kind`` or raise ``ValueError`` naming ``key`` and the allowed range."""
        if self.kind is str:
            if value not in self.choices:
                raise ValueError(f"{key} must be {self.describe()}, got {value!r}")
            return str(value)
        if isinstance(value, bool) or not isinstance(value, Integral if self.kind is int else Real):
            raise ValueError(f"{key} must be {self.describe()}, got {type(value).__name__} {value!r}")
        out = self.kind(value)
        if self.kind is float and not math.isfinite(out):
            raise ValueError(f"{key} must be {self.describe()}, got {value!r}")
        if (self.low is not None and out < self.low) or (self.high is not None and out > self.high):
            raise ValueError(f"{key} must be {self.describe()}, got {value!r}")
        return out


def param(default: int | float | str, kind: type, low: float | None = None, high: float | None = None,
          choices: tuple[str, ...] = ()) -> Any:
    """Declare a dataclass field with a default and a validated type/range (``str``: one of ``choices``)."""
    return dataclasses.field(default=default, metadata={"spec": ParamSpec(kind, low, high, choices)})


@dataclass(frozen=True)
class StrategyArgs:
    """Base of the per-strategy argument dataclasses; subclasses re-declare fields to change defaults."""

    n_candidates: int = param(1, int, low=1)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, f.metadata["spec"].coerce(f.name, getattr(self, f.name)))
        self.check_relations()

    def check_relations(self) -> None:
        """Cross-field constraints; override and raise ``ValueError`` naming the fields."""

    @classmethod
    def allowed(cls) -> str:
        """One line per key: ``name (range, default value)``."""
        return ", ".join(
            f"{f.name} ({f.metadata['spec'].describe()}, default {f.default})" for f in dataclasses.fields(cls)
        )

    @classmethod
    def from_dict(cls: type[A], params: Mapping[str, Any]) -> A:
        """Build from a plain dict (e.g. parsed yaml); unknown keys and bad values raise ``ValueError``."""
        if not isinstance(params, Mapping):
            raise ValueError(f"{cls.__name__}: parameters must be a mapping, got {type(params).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(k) for k in params if k not in known)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown key(s) {unknown}; allowed keys: {cls.allowed()}")
        try:
            return cls(**params)
        except ValueError as err:
            raise ValueError(f"{cls.__name__}: {err}; allowed keys: {cls.allowed()}") from None
