"""Overhead of ``neg_diagnostics``: epoch time with the measurement pass against without it, in one run.

    OMP_NUM_THREADS=1 python benchmarks/bench_diagnostics.py [--dataset baby] [--epochs 3]
        [--strategies rns dns mixgcf ahns] [--rows 2048] [--device cpu|cuda]

Per strategy, one model is trained for ``--epochs`` epochs; each epoch times the training pass and then the
diagnostics pass (``NegativeDiagnostics.record``) separately, so ``ratio = (train + diagnostics) / train``
is the epoch-time factor with diagnostics on (training itself is identical either way; the tests check
that). Default dataset: the prepared Baby copy when present, else ``synthetic-2000``. Nothing is asserted.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

import recbole_neggen  # noqa: F401  (compat shims before recbole)
from recbole.utils import init_seed

from recbole_neggen.config import Config
from recbole_neggen.diagnostics import NegativeDiagnostics
from recbole_neggen.utils import create_dataset, data_preparation, get_model, get_trainer


def default_dataset() -> str:
    return "baby" if (Path("dataset") / "baby" / "baby.train.inter").is_file() else "synthetic-2000"


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def bench(model: str, dataset: str, overrides: dict, epochs: int, workdir: Path) -> dict[str, float]:
    """Median train / diagnostics seconds per epoch and the diagnostics set-up time for one model."""
    config = Config(model=model, dataset=dataset, config_dict={
        "run_root": str(workdir), "checkpoint_dir": str(workdir), "show_progress": False, "state": "WARNING",
        **overrides})
    init_seed(config["seed"], config["reproducibility"])
    train, valid, _ = data_preparation(config, create_dataset(config))
    net = get_model(config["model"])(config, train._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, net)
    start = time.perf_counter()
    diagnostics = NegativeDiagnostics(config, train, valid._dataset)
    setup_s = time.perf_counter() - start
    train_s, diag_s = [], []
    for epoch in range(epochs):
        net.train()
        start = time.perf_counter()
        trainer._train_epoch(train, epoch)
        sync()
        middle = time.perf_counter()
        diagnostics.record(net, epoch)
        sync()
        train_s.append(middle - start)
        diag_s.append(time.perf_counter() - middle)
    train_med, diag_med = statistics.median(train_s), statistics.median(diag_s)
    return {"rows": len(diagnostics.batch), "train_rows": len(train._dataset), "train_s": train_med,
            "diag_s": diag_med, "ratio": (train_med + diag_med) / train_med, "setup_s": setup_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=None, help="default: baby when prepared, else synthetic-2000")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--strategies", nargs="*", default=["rns", "dns", "mixgcf", "ahns"])
    parser.add_argument("--rows", type=int, default=2048, help="neg_diagnostics_rows")
    parser.add_argument("--backbone", default="lightgcn")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    dataset = args.dataset or default_dataset()
    common = {"use_gpu": args.device == "cuda", "backbone": args.backbone, "neg_diagnostics_rows": args.rows}
    print(f"dataset {dataset}, backbone {args.backbone}, {args.epochs} epochs, device {args.device}, "
          f"torch threads {torch.get_num_threads()}\n")
    print("| strategy | train rows | diag rows | train s/epoch | diagnostics s/epoch | ratio on/off | set-up s |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for strategy in args.strategies:
            model = "NegGen" if strategy == "neggen" else "NSRec"
            r = bench(model, dataset, {**common, "neg_strategy": strategy}, args.epochs, Path(tmp) / strategy)
            print(f"| {strategy} | {r['train_rows']} | {r['rows']} | {r['train_s']:.3f} | {r['diag_s']:.3f} | "
                  f"{r['ratio']:.3f} | {r['setup_s']:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
