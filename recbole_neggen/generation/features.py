"""Feature spaces of a negative bank: which field of a positive / variant is encoded, and how.

- ``text``: the (rewritten) item text, with the dataset's text encoder (all-MiniLM-L6-v2 by default).
- ``visual``: the visual description, with the configured image/CLIP *text* encoder when one is given,
  else with the text encoder (method.md §3: a generated negative has no image).
- ``image`` (only when the dataset has just precomputed image features, e.g. MMRec's 4096-d CNN
  features): a ridge map W fitted on the catalogue from each item's text feature to its image feature,
  applied to the text-encoded visual description: ``image = [enc(desc), 1] @ W``.

Positives and negatives always go through the same map, so ``m+ - m-`` compares like with like.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np


class TextEncoderLike(Protocol):
    """Anything with ``encode(list[str]) -> float32 [n, dim]``."""

    def encode(self, texts: list[str]) -> np.ndarray: ...


def encoder_name(encoder: Any) -> str:
    """Provenance name: the encoder's ``name`` attribute, else its class name."""
    return str(getattr(encoder, "name", None) or type(encoder).__qualname__)


def encode_texts(encoder: TextEncoderLike, texts: Sequence[str]) -> np.ndarray:
    """Encode quietly (``show_progress=False`` when the encoder takes it) -> float32 [n, dim], checked."""
    kwargs = {"show_progress": False} if "show_progress" in inspect.signature(encoder.encode).parameters else {}
    out = np.asarray(encoder.encode(list(texts), **kwargs), dtype=np.float32)
    if out.ndim != 2 or out.shape[0] != len(texts):
        raise ValueError(f"{encoder_name(encoder)}.encode returned shape {out.shape} for {len(texts)} texts")
    if not np.isfinite(out).all():
        raise ValueError(f"{encoder_name(encoder)}.encode returned non-finite values")
    return out


def fit_ridge(x: np.ndarray, y: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Ridge regression with an unpenalised bias: x [n, d_in], y [n, d_out] -> W [d_in + 1, d_out]."""
    if x.shape[0] != y.shape[0] or x.shape[0] < 2:
        raise ValueError(f"ridge fit needs matching rows (>= 2), got x {x.shape} and y {y.shape}")
    xb = np.hstack([x, np.ones((x.shape[0], 1))]).astype(np.float64)
    penalty = alpha * np.eye(xb.shape[1])
    penalty[-1, -1] = 0.0
    return np.linalg.solve(xb.T @ xb + penalty, xb.T @ y.astype(np.float64)).astype(np.float32)


@dataclass
class FeatureSpace:
    """One bank feature space. ``field``: 'text' or 'visual_description'; ``projection``: optional ridge W."""

    name: str
    field: str
    encoder: TextEncoderLike
    projection: np.ndarray | None = None

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """texts [n] -> float32 [n, dim]; each distinct text is encoded once (a variant that keeps a
        modality repeats its positive's text)."""
        unique = list(dict.fromkeys(texts))
        index = {text: i for i, text in enumerate(unique)}
        feats = encode_texts(self.encoder, unique)[[index[t] for t in texts]]
        if self.projection is None:
            return feats
        return np.hstack([feats, np.ones((len(feats), 1), np.float32)]) @ self.projection
