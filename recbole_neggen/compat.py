"""Every fix RecBole 1.2.1 needs on today's stack (numpy 2, pandas 3, scipy >= 1.14, torch >= 2.6).

Applied once, on import of :mod:`recbole_neggen` (before anything imports recbole). Each shim acts only when
the installed library needs it and is covered by a test in ``tests/test_compat.py`` that fails without it.
Nothing else in the package monkeypatches.

Shims (see ``../shared/docs/recbole.md`` section 2):

1. numpy 2 removed ``np.float_`` / ``np.complex_`` / ``np.unicode_``; ``Config.compatibility_settings`` reads them.
2. torch >= 2.6 loads with ``weights_only=True``; RecBole checkpoints pickle the whole Config. We write a
   SHA-256 sidecar next to every checkpoint RecBole saves and reload a checkpoint with ``weights_only=False``
   only when the sidecar matches, i.e. only files this package wrote.
3. pandas 3 ``Series.agg(len)`` returns the series length instead of per-element lengths (seq fields).
4. pandas 3 copy-on-write turns RecBole's chained ``fillna(inplace=True)`` into a no-op: (a) empty seq cells stay
   NaN on read, (b) ``Dataset._fill_nan`` silently leaves NaN floats and missing tokens.
5. scipy removed the private ``dok_matrix._update`` that LightGCN / NGCF / ... call.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import types
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

RECBOLE_VERSION = "1.2.1"
_APPLIED = False


# --- 1. numpy 2 aliases -------------------------------------------------------------------------------
def _numpy_aliases() -> None:
    for alias, target in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)):
        if alias not in np.__dict__:
            setattr(np, alias, target)


# --- 2. trusted checkpoint reload -----------------------------------------------------------------------
def _sidecar(path: str | Path) -> Path:
    return Path(f"{path}.sha256")


def _sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def mark_trusted(path: str | Path) -> None:
    """Record ``path`` as a checkpoint this package wrote (SHA-256 sidecar ``<path>.sha256``)."""
    _sidecar(path).write_text(_sha256(path) + "\n")


def load_trusted_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a RecBole checkpoint written by this package (full pickle), refusing any other file.

    Raises:
        ValueError: when ``path`` has no matching sidecar, i.e. this package did not write it.
    """
    sidecar = _sidecar(path)
    if not sidecar.is_file():
        raise ValueError(
            f"refusing to unpickle {path}: it has no {sidecar.name} sidecar, so recbole_neggen did not write it; "
            "RecBole checkpoints hold arbitrary pickled objects and are only loaded when they are our own"
        )
    if sidecar.read_text().strip() != _sha256(path):
        raise ValueError(f"refusing to unpickle {path}: its content does not match {sidecar} (modified since saved)")
    return torch.load(path, map_location=map_location, weights_only=False)


def _patch_trainer_checkpoints() -> None:
    from recbole.trainer import trainer as trainer_module

    trainer_cls = trainer_module.Trainer
    if getattr(trainer_cls, "_neggen_trusted", False):
        return
    original_save = trainer_cls._save_checkpoint
    original_evaluate = trainer_cls.evaluate

    @functools.wraps(original_save)
    def _save_checkpoint(self, epoch, verbose=True, **kwargs):  # type: ignore[no-untyped-def]
        saved_model_file = kwargs.get("saved_model_file", self.saved_model_file)
        original_save(self, epoch, verbose=verbose, **kwargs)
        if Path(saved_model_file).is_file():
            mark_trusted(saved_model_file)

    @functools.wraps(original_evaluate)
    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):  # type: ignore[no-untyped-def]
        if eval_data and load_best_model:
            checkpoint = load_trusted_checkpoint(model_file or self.saved_model_file, self.device)
            self.model.load_state_dict(checkpoint["state_dict"])
            self.model.load_other_parameter(checkpoint.get("other_parameter"))
        return original_evaluate(self, eval_data, load_best_model=False, show_progress=show_progress)

    trainer_cls._save_checkpoint = _save_checkpoint
    trainer_cls.evaluate = evaluate
    trainer_cls._neggen_trusted = True


# --- 3. pandas 3: per-element len in Series.agg -------------------------------------------------------------
def _agg_len_is_elementwise() -> bool:
    lengths = pd.Series([[1, 2], [3]], dtype=object).agg(len)
    return isinstance(lengths, pd.Series) and list(lengths) == [2, 1]


@contextlib.contextmanager
def _elementwise_agg_len() -> Iterator[None]:
    """While active, ``Series.agg(len)`` returns per-element lengths, as RecBole expects."""
    original = pd.Series.agg

    def agg(self, func=None, *args, **kwargs):  # type: ignore[no-untyped-def]
        if func is len:
            return self.map(len)
        return original(self, func, *args, **kwargs)

    pd.Series.agg = agg
    try:
        yield
    finally:
        pd.Series.agg = original


def _with_elementwise_agg_len(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with _elementwise_agg_len():
            return method(*args, **kwargs)

    wrapped._neggen_wrapped = True  # type: ignore[attr-defined]
    return wrapped


# --- 4. pandas copy-on-write fillna -----------------------------------------------------------------------
def _chained_fillna_is_noop() -> bool:
    frame = pd.DataFrame({"x": [np.nan]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame["x"].fillna(value=0.0, inplace=True)
    return bool(frame["x"].isna().any())


def _read_csv_filling_seq(*args: Any, **kwargs: Any) -> pd.DataFrame:
    """``pd.read_csv`` with empty ``*_seq`` cells read as ``''`` (RecBole splits them as strings)."""
    frame = pd.read_csv(*args, **kwargs)
    seq_columns = [col for col in frame.columns if str(col).endswith("seq")]
    if seq_columns:
        frame[seq_columns] = frame[seq_columns].fillna("")
    return frame


def _fill_nan(self) -> None:  # type: ignore[no-untyped-def]
    """Assigning version of ``Dataset._fill_nan``: tokens -> 0 ([PAD]), floats -> column mean, seqs -> empty."""
    from recbole.utils import FeatureType

    for feat_name in self.feat_name_list:
        feat = getattr(self, feat_name)
        for field in list(feat.columns):
            ftype = self.field2type[field]
            if ftype == FeatureType.TOKEN:
                feat[field] = feat[field].fillna(value=0)
            elif ftype == FeatureType.FLOAT:
                feat[field] = feat[field].fillna(value=feat[field].mean())
            else:
                dtype = np.int64 if ftype == FeatureType.TOKEN_SEQ else np.float64
                feat[field] = feat[field].apply(lambda x: np.array([], dtype=dtype) if isinstance(x, float) else x)


def _patch_dataset() -> None:
    from recbole.data.dataset import dataset as dataset_module

    dataset_cls = dataset_module.Dataset
    if _chained_fillna_is_noop() and not hasattr(dataset_module.pd, "_neggen_proxy"):
        proxy = types.ModuleType("pandas_neggen_proxy")
        proxy.__dict__.update({k: v for k, v in vars(pd).items() if not k.startswith("__")})
        proxy.read_csv = _read_csv_filling_seq
        proxy._neggen_proxy = True  # type: ignore[attr-defined]
        dataset_module.pd = proxy
        dataset_cls._fill_nan = _fill_nan
    if not _agg_len_is_elementwise():
        for name in ("_remap", "_normalize", "_discretization"):
            method = getattr(dataset_cls, name)
            if not getattr(method, "_neggen_wrapped", False):
                setattr(dataset_cls, name, _with_elementwise_agg_len(method))


# --- 5. scipy dok_matrix._update ---------------------------------------------------------------------------
def _dok_update(self, data: dict) -> None:  # type: ignore[no-untyped-def]
    """Bulk-insert ``{(row, col): value}`` without per-item validation (removed private scipy method)."""
    self._dict.update(data)


def _scipy_dok_update() -> None:
    if not hasattr(sp.dok_matrix, "_update"):
        sp.dok_matrix._update = _dok_update


def _check_recbole_version() -> None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("recbole")
    except PackageNotFoundError:
        raise ImportError(
            f"recbole_neggen needs recbole=={RECBOLE_VERSION}: pip install --no-deps recbole=={RECBOLE_VERSION}"
        ) from None
    if found != RECBOLE_VERSION:
        raise ImportError(f"recbole_neggen is tested against recbole=={RECBOLE_VERSION}, found {found}")


def apply() -> None:
    """Apply every shim once (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    _check_recbole_version()
    _numpy_aliases()
    _scipy_dok_update()
    _patch_dataset()
    _patch_trainer_checkpoints()
    _APPLIED = True
