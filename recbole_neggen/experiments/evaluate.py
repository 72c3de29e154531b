"""Test evaluation of a finished (or scheduler-stopped) run from its best-validation checkpoint, once.

Used after a sweep: trials train with ``evaluate_test=False``; only the chosen trial's run directory is
evaluated here. The result is stored in ``<run_dir>/test_result.json`` and returned again on later calls,
so the test split is touched once per run.
"""
from __future__ import annotations

import json
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

TEST_RESULT = "test_result.json"


def find_checkpoint(run_dir: Path) -> Path:
    """The run's checkpoint: ``result.json``'s ``checkpoint`` when the run finished, else the one ``*.pth``
    with a ``.sha256`` sidecar (a trial stopped by the scheduler has no ``result.json``).

    Raises:
        FileNotFoundError: no checkpoint, or several candidates.
    """
    result = run_dir / "result.json"
    if result.is_file() and json.loads(result.read_text()).get("checkpoint"):
        return Path(json.loads(result.read_text())["checkpoint"])
    found = sorted(p for p in run_dir.glob("*.pth") if p.with_name(p.name + ".sha256").is_file())
    if len(found) != 1:
        raise FileNotFoundError(f"{run_dir}: expected one checkpoint *.pth with a .sha256 sidecar, found "
                                f"{[p.name for p in found] or 'none'} (was the run trained with saved=True?)")
    return found[0]


def evaluate_run(run_dir: str | Path, device: str | None = None) -> dict[str, Any]:
    """Rebuild config, dataset and model from the run's checkpoint and evaluate the test split.

    Args:
        run_dir: a run directory written by ``objective`` (``saved=True``).
        device: ``"cpu"`` / ``"cuda"``; default: the run's device when available here, else CPU.

    Returns:
        ``{"run_dir", "checkpoint", "epoch", "best_valid_score", "test": {metric: float}, "evaluated_at"}``;
        read back from ``test_result.json`` when the run was already evaluated.
    """
    from recbole_neggen.compat import load_trusted_checkpoint
    from recbole_neggen.quick_start import build_run

    run_dir = Path(run_dir).resolve()
    stored = run_dir / TEST_RESULT
    if stored.is_file():
        return json.loads(stored.read_text())
    checkpoint_path = find_checkpoint(run_dir)
    checkpoint = load_trusted_checkpoint(checkpoint_path)
    config = checkpoint["config"]
    wanted = torch.device(device) if device else config["device"]
    config["device"] = wanted if wanted.type != "cuda" or torch.cuda.is_available() else torch.device("cpu")
    with tempfile.TemporaryDirectory() as scratch:  # the Trainer's own checkpoint / TensorBoard files go here
        config["checkpoint_dir"] = scratch
        built = build_run(config)
        trainer = built.trainer
        try:
            test = trainer.evaluate(built.test, load_best_model=True, model_file=str(checkpoint_path))
        finally:
            trainer.tensorboard.close()
    result = {"run_dir": str(run_dir), "checkpoint": str(checkpoint_path), "epoch": int(checkpoint["epoch"]),
              "best_valid_score": float(checkpoint["best_valid_score"]),
              "test": {str(k): float(v) for k, v in test.items()},
              "evaluated_at": datetime.now().isoformat(timespec="seconds")}
    stored.write_text(json.dumps(result, indent=2))
    return result
