"""Name -> class registries that fail with the list of valid choices (PyG resolver style)."""
from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


def normalize(name: str) -> str:
    """Lower-case and drop ``-`` / ``_`` so ``LightGCN``, ``light_gcn`` and ``lightgcn`` match."""
    return name.lower().replace("-", "").replace("_", "")


class Registry(Generic[T]):
    """A small name -> object map; ``get`` raises ``ValueError`` listing every registered name."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, tuple[str, T]] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator registering an object under ``name`` (default: its ``__name__``)."""

        def wrap(obj: T) -> T:
            key = name or getattr(obj, "__name__")
            norm = normalize(key)
            if norm in self._items and self._items[norm][1] is not obj:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
            self._items[norm] = (key, obj)
            return obj

        return wrap

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and normalize(name) in self._items

    def get(self, name: str) -> T:
        try:
            return self._items[normalize(name)][1]
        except KeyError:
            raise ValueError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return sorted(key for key, _ in self._items.values())

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
