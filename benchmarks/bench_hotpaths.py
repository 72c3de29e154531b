"""Hot-path timings on one dataset (default Baby, mmrec protocol): start-up, training epoch per model and
negative strategy, full-sort evaluation pass, peak memory. Prints one markdown table.

    OMP_NUM_THREADS=1 NEGGEN_DATA_PATH=../shared/data python benchmarks/bench_hotpaths.py [--dataset baby]
        [--epochs 5] [--strategies rns dns dns_mn mixgcf ahns dens neggen] [--device cpu|cuda]

Every row is built first; then ``--epochs`` rounds each time one epoch of every row in turn (so that drift in
the machine's speed hits all rows alike). Times are medians over rounds; ratios are medians of the per-round
ratio to the uniform (rns) 2-layer epoch. Nothing here is asserted: numbers are for the issue notes.
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


def common_settings(device: str, neggen_encoder: str) -> dict:
    """The issue's setting (d = 64, batch 2048) and the prepared-data folder, resolved before leaving the cwd."""
    return {"use_gpu": device == "cuda", "embedding_size": 64, "train_batch_size": 2048, "neggen_encoder": neggen_encoder,
            "prepared_path": os.path.abspath(os.environ.get("NEGGEN_PREPARED_PATH") or "dataset")}


def build(model: str, dataset: str, overrides: dict, workdir: Path):
    config = Config(model=model, dataset=dataset, config_dict={
        "run_root": str(workdir / "runs"), "checkpoint_dir": str(workdir / "runs"), "show_progress": False,
        "state": "WARNING", **overrides})
    t = time.perf_counter()
    built = build_run(config)
    return config, built.trainer, built.train, built.test, time.perf_counter() - t


def time_epoch(trainer, train, epoch: int) -> float:
    trainer.model.train()
    t = time.perf_counter()
    trainer._train_epoch(train, epoch)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t


def time_eval(trainer, test, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        trainer.evaluate(test, load_best_model=False)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def interleaved_epochs(built: dict, rounds: int) -> dict[str, list[float]]:
    """``{label: (trainer, train loader)}`` -> ``{label: [seconds per epoch]}``: each round times one epoch of
    every row in turn, so that drift in the machine's speed hits every row alike."""
    times: dict[str, list[float]] = {label: [] for label in built}
    for epoch in range(rounds):
        for label, (trainer, train) in built.items():
            times[label].append(time_epoch(trainer, train, epoch))
        print(f"  round {epoch + 1}/{rounds} done", file=sys.stderr, flush=True)
    return times


BASE = "LightGCN 2 layers, rns"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="baby")
    parser.add_argument("--epochs", type=int, default=5, help="rounds; each round times one epoch of every row")
    parser.add_argument("--strategies", nargs="*", default=["rns", "dns", "dns_mn", "mixgcf", "ahns", "dens", "neggen"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--candidates", type=int, default=32)
    parser.add_argument("--neggen-encoder", default="minilm", help="text encoder of the NegGen bank to reuse")
    args = parser.parse_args()
    common = common_settings(args.device, args.neggen_encoder)
    rows = [("LightGCN 1 layer, rns", "NSRec", {"n_layers": 1, "neg_strategy": "rns"}),
            ("LightGCN 3 layers, rns", "NSRec", {"n_layers": 3, "neg_strategy": "rns"})] + [
        (BASE if s == "rns" else f"LightGCN 2 layers, {s} (C={args.candidates})", "NegGen" if s == "neggen" else "NSRec",
         {"n_layers": 2, "neg_strategy": s, "neg_params": {} if s == "rns" else {"n_candidates": args.candidates}})
        for s in args.strategies]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.chdir(work)
        built = {}
        for i, (label, model, extra) in enumerate(rows):
            t = time.perf_counter()
            _, trainer, train, test, build_s = build(model, args.dataset, {**common, **extra}, work)
            if i == 0:  # start-up, evaluation and memory of one ordinary run, before the other rows exist
                startup, first_build_s = IMPORT_S + (time.perf_counter() - t), build_s
                time_epoch(trainer, train, 0)
                eval_s = time_eval(trainer, test, 5)
                one_run_rss = peak_rss_mb()
            built[label] = (trainer, train)
        times = interleaved_epochs(built, args.epochs)
    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, torch threads {torch.get_num_threads()}, "
          f"device {args.device}, dataset {args.dataset}, {args.epochs} interleaved rounds (medians)\n")
    print("| hot path | seconds | ratio to rns (2 layers), median of per-round ratios |\n|---|---|---|")
    print(f"| full-sort eval pass, test split (top-50, mask train) | {eval_s:.3f} | - |")
    print(f"| start-up (imports {IMPORT_S:.1f}s + dataset load, loaders, model {first_build_s:.1f}s) | {startup:.2f} | - |")
    for label, values in times.items():
        ratio = "-"
        if label.startswith("LightGCN 2 layers") and BASE in times:
            ratio = f"{statistics.median(v / b for v, b in zip(values, times[BASE])):.2f}x"
        print(f"| {label} | {statistics.median(values):.3f} | {ratio} |")
    one_layer = times["LightGCN 1 layer, rns"]
    print(f"\n3 layers / 1 layer: {statistics.median(a / b for a, b in zip(times['LightGCN 3 layers, rns'], one_layer)):.2f}x")
    print(f"peak RSS after one run's start-up, epoch and evaluations: {one_run_rss:.0f} MiB; "
          f"with every row built: {peak_rss_mb():.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
