"""One training job, end to end: ``objective(...) -> result``. The CLI, tests, bench and Ray Tune all call it."""
from __future__ import annotations

import hashlib
import json
import logging
import platform
import resource
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable

import yaml
from recbole.utils import init_seed

from recbole_neggen.config import Config
from recbole_neggen.utils import create_dataset, data_preparation, get_model, get_trainer

_VERSIONED = ("recbole_neggen", "recbole", "torch", "numpy", "pandas", "scipy", "ray", "transformers")
EpochCallback = Callable[[int, float, dict[str, float]], None]


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a result depends on (``python`` included)."""
    found = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def _plain(value: Any) -> Any:
    """Config values -> yaml/json-safe plain data (enums, numpy scalars, paths become str / float)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def config_hash(config: Config) -> str:
    """Short hash of the settings that define a run (paths, device and seed excluded)."""
    skip = {"data_path", "checkpoint_dir", "run_root", "prepared_path", "device", "gpu_id", "seed", "run_dir"}
    items = {k: _plain(v) for k, v in config.final_config_dict.items() if k not in skip}
    return hashlib.sha1(json.dumps(items, sort_keys=True).encode()).hexdigest()[:10]


def make_run_dir(root: Path, model: str, dataset: str) -> Path:
    """Create ``<root>/<model>-<dataset>-<time>-<random>``; never reuses an existing directory."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    root.mkdir(parents=True, exist_ok=True)
    while True:
        path = root / f"{model}-{dataset}-{stamp}-{uuid.uuid4().hex[:8]}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


def _init_logging(run_dir: Path, state: str | None) -> logging.Handler:
    level = getattr(logging, (state or "INFO").upper(), logging.INFO)
    root = logging.getLogger()
    root.setLevel(level)
    if not any(isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler) for h in root.handlers):
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        root.addHandler(stream)
    handler = logging.FileHandler(run_dir / "run.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.setLevel(level)
    root.addHandler(handler)
    return handler


def _floats(result: Any) -> dict[str, float]:
    return {str(k): float(v) for k, v in (result or {}).items()}


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class BuiltRun:
    """Everything one run trains and evaluates with (see :func:`build_run`)."""

    dataset: Any
    train: Any
    valid: Any
    test: Any
    model: Any
    trainer: Any


def build_run(config: Config) -> BuiltRun:
    """RecBole's build sequence with our factories, seeded as ``run_recbole`` seeds it: dataset, loaders,
    model on ``config['device']``, trainer. Shared by :func:`objective`, ``evaluate_run`` and the benchmarks."""
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train, valid, test = data_preparation(config, dataset)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    return BuiltRun(dataset, train, valid, test, model, trainer)


def objective(
    model: str | type | None = None,
    dataset: str | None = None,
    config_file_list: list[str] | None = None,
    config_dict: dict[str, Any] | None = None,
    saved: bool = True,
    evaluate_test: bool = True,
    epoch_callback: EpochCallback | None = None,
) -> dict[str, Any]:
    """Train one model, select on validation, evaluate test once, write a run directory.

    Args:
        model, dataset, config_file_list, config_dict: as RecBole's ``run_recbole``.
        saved: keep the best-validation checkpoint and reload it for test (``True`` in every real run).
        evaluate_test: ``False`` for hyperparameter search: the test split is not touched.
        epoch_callback: ``f(epoch, valid_score, valid_result)`` after each validation (Ray Tune reports here).

    Returns:
        The ``result.json`` content: best-valid and test metrics, best epoch, seed, config hash, versions,
        wall time, peak memory, paths.
    """
    start = time.time()
    config = Config(model=model, dataset=dataset, config_file_list=config_file_list, config_dict=config_dict)
    run_dir = make_run_dir(config.args.run_root, config["model"], config["dataset"])
    config["checkpoint_dir"] = str(run_dir)
    config["run_dir"] = str(run_dir)
    handler = _init_logging(run_dir, config["state"])
    logger = logging.getLogger("recbole_neggen")
    try:
        built = build_run(config)
        train_data, valid_data, test_data, net, trainer = (
            built.train, built.valid, built.test, built.model, built.trainer)
        logger.info(str(built.dataset))
        logger.info(str(net))
        if config["neg_diagnostics"]:
            if hasattr(net, "strategy"):
                from recbole_neggen.diagnostics import NegativeDiagnostics

                trainer.diagnostics = NegativeDiagnostics(config, train_data, valid_data._dataset)
            else:
                logger.warning("neg_diagnostics ignored: model %s has no negative strategy", config["model"])
        history: list[dict[str, Any]] = []

        def on_valid(epoch: int, score: float) -> None:
            entry = {"epoch": epoch, "valid_score": float(score)}
            history.append(entry)
            if epoch_callback is not None:
                epoch_callback(epoch, float(score), entry)

        (run_dir / "config.yaml").write_text(yaml.safe_dump(_plain(config.final_config_dict), sort_keys=True))
        best_valid_score, best_valid_result = trainer.fit(
            train_data, valid_data, saved=saved, show_progress=config["show_progress"], callback_fn=on_valid
        )
        test_result = trainer.evaluate(test_data, load_best_model=saved) if evaluate_test else None
        best = max(history, key=lambda e: e["valid_score"]) if history else None
        result: dict[str, Any] = {
            "model": config["model"],
            "dataset": config["dataset"],
            "seed": config["seed"],
            "config_hash": config_hash(config),
            "eval_protocol": config.args.eval_protocol,
            "valid_metric": config["valid_metric"],
            "best_valid_score": float(best_valid_score),
            "best_valid": _floats(best_valid_result),
            "test": _floats(test_result) if test_result is not None else None,
            "best_epoch": best["epoch"] if best else None,
            "epochs_run": (history[-1]["epoch"] + 1) if history else 0,
            "valid_history": history,
            "epoch_logs": trainer.epoch_logs,
            "diagnostics": trainer.diagnostics.summary(best["epoch"] if best else None)
            if getattr(trainer, "diagnostics", None) is not None else None,
            "wall_time_s": round(time.time() - start, 3),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "versions": package_versions(),
            "command": sys.argv,
            "run_dir": str(run_dir),
            "checkpoint": trainer.saved_model_file if saved else None,
        }
        (run_dir / "result.json").write_text(json.dumps(result, indent=2))
        logger.info("best valid: %s", result["best_valid"])
        logger.info("test: %s", result["test"])
        return result
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
