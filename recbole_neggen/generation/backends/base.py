"""The one interface every generation backend implements, and the request/reply records it trades.

The pipeline renders prompts and validates answers; a backend only answers :class:`Request` batches.
Chat backends answer ``messages`` (image attached to the first user turn); the ``attribute`` backend
reads the structured fields instead and answers with a dict.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Sequence

from recbole_neggen.generation.records import ItemRecord
from recbole_neggen.registry import Registry

BACKENDS: Registry[type["Backend"]] = Registry("generation backend")


@dataclass(frozen=True)
class Request:
    """One model call. ``messages``: chat turns ``{"role", "content": str}``; ``image``: attached to the
    first user turn (analyse stage only); ``seed``: derived per item, stage and variant."""

    stage: str  # "analyse" | "intervene"
    item: ItemRecord
    messages: tuple[dict[str, str], ...]
    seed: int
    source_text: str
    image: Path | None = None
    analysis: dict[str, Any] | None = None
    tag: str | None = None
    variant: int = 0
    avoid: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reply:
    """A backend's answer: raw model ``text``, a structured ``data`` dict, or a transport ``error``."""

    text: str | None = None
    data: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class Usage:
    """Counters a backend keeps for benchmarks: calls, tokens, seconds spent answering."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


class Backend(ABC):
    """Answers batches of requests. Subclasses register with ``@BACKENDS.register(name)``."""

    name: ClassVar[str]
    can_repair: ClassVar[bool] = True  # whether sending the error back can change the answer
    sees_images: bool = False  # whether item images reach the model (else the look is inferred from text)

    def __init__(self) -> None:
        self.usage = Usage()

    def prepare(self, catalogue: Sequence[ItemRecord]) -> None:
        """See the whole catalogue once before generation (vocabularies etc.); no-op by default."""

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """What determines this backend's answers (model, decoding options); recorded in provenance."""

    @abstractmethod
    def _answer(self, requests: Sequence[Request]) -> list[Reply]:
        """Answer ``requests`` in order, one reply each."""

    def complete(self, requests: Sequence[Request]) -> list[Reply]:
        """Answer ``requests`` in order; counts calls and time in :attr:`usage`."""
        if not requests:
            return []
        start = time.perf_counter()
        replies = self._answer(requests)
        if len(replies) != len(requests):
            raise RuntimeError(f"{self.name} backend returned {len(replies)} replies for {len(requests)} requests")
        self.usage.calls += len(requests)
        self.usage.seconds += time.perf_counter() - start
        return replies
