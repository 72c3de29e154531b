"""Hot-path timings on one dataset (default Baby, mmrec protocol): start-up, training epoch per model and
negative strategy, full-sort evaluation pass, peak memory. Prints one markdown table.

    OMP_NUM_THREADS=1 NEGGEN_DATA_PATH=../shared/data python benchmarks/bench_hotpaths.py [--dataset baby]
        [--epochs 3] [--strategies rns dns dns_mn mixgcf ahns dens neggen] [--device cpu|cuda]

Epoch times are medians over ``--epochs`` epochs of the same model in one process; ratios are against the
uniform (rns) epoch measured in the same run. Nothing here is asserted: numbers are for the issue notes.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

T0 = time.perf_counter()
import torch  # noqa: E402

import recbole_neggen  # noqa: E402,F401
from recbole_neggen.config import Config  # noqa: E402
from recbole_neggen.quick_start import build_run, peak_rss_mb  # noqa: E402

IMPORT_S = time.perf_counter() - T0


def build(model: str, dataset: str, overrides: dict, workdir: Path):
    config = Config(model=model, dataset=dataset, config_dict={
        "run_root": str(workdir / "runs"), "checkpoint_dir": str(workdir / "runs"), "show_progress": False,
        "state": "WARNING", **overrides})
    t = time.perf_counter()
    built = build_run(config)
    return config, built.trainer, built.train, built.test, time.perf_counter() - t


def time_epochs(trainer, train, epochs: int) -> float:
    times = []
    for epoch in range(epochs):
        trainer.model.train()
        t = time.perf_counter()
        trainer._train_epoch(train, epoch)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def time_eval(trainer, test, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        trainer.evaluate(test, load_best_model=False)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="baby")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--strategies", nargs="*", default=["rns", "dns", "dns_mn", "mixgcf", "ahns", "dens", "neggen"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--candidates", type=int, default=32)
    parser.add_argument("--neggen-encoder", default="minilm", help="text encoder of the NegGen bank to reuse")
    args = parser.parse_args()
    prepared = os.path.abspath(os.environ.get("NEGGEN_PREPARED_PATH") or "dataset")  # before leaving the cwd
    common = {"use_gpu": args.device == "cuda", "embedding_size": 64, "train_batch_size": 2048,
              "prepared_path": prepared, "neggen_encoder": args.neggen_encoder}
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.chdir(work)
        first = True
        base_epoch = None
        for label, model, extra in (
            [("LightGCN 1 layer, rns", "NSRec", {"n_layers": 1, "neg_strategy": "rns"}),
             ("LightGCN 3 layers, rns", "NSRec", {"n_layers": 3, "neg_strategy": "rns"})]
            + [(f"LightGCN 2 layers, {s} (C={args.candidates})", "NegGen" if s == "neggen" else "NSRec",
                {"n_layers": 2, "neg_strategy": s,
                 "neg_params": {} if s == "rns" else {"n_candidates": args.candidates}})
               for s in args.strategies]
        ):
            t = time.perf_counter()
            config, trainer, train, test, build_s = build(model, args.dataset, {**common, **extra}, work)
            startup = IMPORT_S + (time.perf_counter() - t) if first else None
            epoch_s = time_epochs(trainer, train, args.epochs)
            if "2 layers, rns" in label:
                base_epoch = epoch_s
            ratio = f"{epoch_s / base_epoch:.2f}x" if base_epoch and "2 layers" in label else "-"
            rows.append((label, f"{epoch_s:.3f}", ratio))
            if first:
                eval_s = time_eval(trainer, test, 3)
                rows.append(("full-sort eval pass, test split (top-50, mask train)", f"{eval_s:.3f}", "-"))
                rows.append((f"start-up (imports {IMPORT_S:.1f}s + dataset load, loaders, model {build_s:.1f}s)",
                             f"{startup:.2f}", "-"))
                first = False
            print(f"  done: {label}: {epoch_s:.3f}s", file=sys.stderr, flush=True)
    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, torch threads {torch.get_num_threads()}, "
          f"device {args.device}, dataset {args.dataset}, epochs timed {args.epochs} (median)\n")
    print("| hot path | seconds | ratio to rns (2 layers) |\n|---|---|---|")
    for label, secs, ratio in rows:
        print(f"| {label} | {secs} | {ratio} |")
    print(f"\npeak RSS of this process: {peak_rss_mb():.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
