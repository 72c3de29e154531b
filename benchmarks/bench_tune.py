"""Ray Tune overhead on this machine, through the package's own sweep path (``recbole_neggen.experiments.tune``).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_tune.py [--epochs 50] [--out DIR]``.

Workload: NSRec, MF backbone, RNS, on the generated synthetic dataset (300 users, 200 items), ``--epochs``
epochs without early stopping, validation only (the test split is not evaluated). Each measurement runs in a
fresh Python process so both paths pay their imports cold; the dataset is prepared once beforehand.

1. In one process: import, then the two runs one after the other (``objective`` twice).
2. Ray, 2 trials (1 CPU each on a 2-CPU local Ray): import, ``ray.init``, ``Tuner.fit``, ``ray.shutdown``.
   Per trial: ``objective`` wall time inside the trial and the trial's wall time seen by the driver (Ray's
   ``on_trial_start`` -> ``on_trial_complete``; the worker process and its imports start before that, so the
   first trial's start-up is reported separately). Amortised overhead per trial = (``Tuner.fit`` x 2 CPUs -
   sum of ``objective`` times) / trials: CPU-seconds of the sweep not spent inside ``objective``.
3. Ray, 4 trials on 2 CPUs: peak trials running at once, useful parallelism = sum of ``objective`` times /
   ``Tuner.fit``, and the cores busy machine-wide during ``Tuner.fit`` (psutil; includes other users' load).
Prints one table per part. Timings are wall clock on a machine that may be shared: compare within one run.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

LEARNING_RATES = (0.002, 0.005, 0.01, 0.02)


def base_config(epochs: int, prepared: Path) -> dict[str, Any]:
    return {"backbone": "mf", "neg_strategy": "rns", "epochs": epochs, "stopping_step": epochs + 1,
            "train_batch_size": 512, "prepared_path": str(prepared), "state": "WARNING"}


def part_in_process(work: Path, epochs: int) -> dict[str, Any]:
    """Import, then the first two runs of the sweep in this process."""
    start = time.time()
    from recbole_neggen.quick_start import objective

    imported = time.time()
    walls = [objective("NSRec", "synthetic", config_dict={**base_config(epochs, work / "dataset"), "learning_rate": lr,
                                                          "run_root": str(work / "inprocess")},
                       saved=True, evaluate_test=False)["wall_time_s"] for lr in LEARNING_RATES[:2]]
    end = time.time()
    return {"import_s": imported - start, "runs_s": end - imported, "total_s": end - start, "objective_s": walls}


def part_ray(work: Path, epochs: int, n_trials: int) -> dict[str, Any]:
    """``n_trials`` trials (1 CPU each) on a 2-CPU local Ray instance, timed per phase and per trial."""
    start = time.time()
    import psutil
    import ray
    from ray import tune

    from recbole_neggen.experiments.tune import TuneSpec, prepare_job, sweep

    imported = time.time()
    spec_path = work / f"tune_{n_trials}.yaml"
    spec_path.write_text(json.dumps({
        "model": "NSRec", "dataset": "synthetic", "config": base_config(epochs, work / "dataset"),
        "space": {"learning_rate": {"grid": list(LEARNING_RATES[:n_trials])}},
        "scheduler": {"max_t": epochs + 1, "grace_period": epochs + 1}}))  # ASHA never stops a trial early
    out = work / f"ray{n_trials}"
    shutil.rmtree(out, ignore_errors=True)  # a previous sweep there would be restored, not rerun
    job, max_t = prepare_job(TuneSpec.load(spec_path), out, {}, cpus=1.0, gpus=0.0)

    class TrialClock(tune.Callback):
        def __init__(self) -> None:
            self.started: dict[str, float] = {}
            self.ended: dict[str, float] = {}

        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.started[trial.trial_id] = time.time()

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.ended[trial.trial_id] = time.time()

    clock = TrialClock()
    prepared = time.time()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    initialised = time.time()
    cpu_before = psutil.cpu_times()
    results, unfinished = sweep(TuneSpec.load(spec_path), out, job, max_t, verbose=0, callbacks=[clock])
    cpu_after = psutil.cpu_times()
    fitted = time.time()
    ray.shutdown()
    end = time.time()
    assert not unfinished and not results.errors, results.errors
    trials = []
    for result in results:
        trial_id = result.metrics["trial_id"]
        run_dir = Path(result.metrics["run_dir"])
        trials.append({"trial_id": trial_id, "wall_s": clock.ended[trial_id] - clock.started[trial_id],
                       "objective_s": json.loads((run_dir / "result.json").read_text())["wall_time_s"],
                       "start": clock.started[trial_id], "end": clock.ended[trial_id]})
    events = sorted([(t["start"], 1) for t in trials] + [(t["end"], -1) for t in trials])
    running, peak = 0, 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    idle = cpu_after.idle - cpu_before.idle
    total = sum(cpu_after) - sum(cpu_before)
    return {"import_s": imported - start, "validate_s": prepared - imported, "init_s": initialised - prepared,
            "fit_s": fitted - initialised, "shutdown_s": end - fitted, "total_s": end - start, "trials": trials,
            "peak_concurrent": peak, "first_start_s": min(t["start"] for t in trials) - initialised,
            "cores_busy": (1 - idle / total) * psutil.cpu_count()}


def amortised_overhead(part: dict[str, Any], cpus: int = 2) -> float:
    """CPU-seconds per trial of ``Tuner.fit`` not spent inside ``objective``."""
    return (part["fit_s"] * cpus - sum(t["objective_s"] for t in part["trials"])) / len(part["trials"])


def run_part(part: str, work: Path, epochs: int) -> dict[str, Any]:
    """Run one part in a fresh interpreter and return its JSON result."""
    proc = subprocess.run([sys.executable, __file__, "--part", part, "--out", str(work), "--epochs", str(epochs)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"part {part} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(header: list[str], rows: list[list[Any]]) -> str:
    fmt = [[f"{v:.2f}" if isinstance(v, float) else str(v) for v in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in fmt)) for i, h in enumerate(header)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(header, widths)), "  ".join("-" * w for w in widths)]
    return "\n".join(lines + ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in fmt])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--out", type=Path, help="work directory (default: a temporary one)")
    parser.add_argument("--part", choices=("inprocess", "ray2", "ray4"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        work = args.out.resolve()
        result = part_in_process(work, args.epochs) if args.part == "inprocess" else part_ray(
            work, args.epochs, int(args.part[-1]))
        print(json.dumps(result))
        return
    work = (args.out or Path(tempfile.mkdtemp(prefix="bench_tune_"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    from recbole_neggen.data.locate import prepared_dir

    prepared_dir("synthetic", None, work / "dataset")
    print(f"work directory: {work}; {args.epochs} epochs per run; synthetic dataset (300 users, 200 items)\n")
    one = run_part("inprocess", work, args.epochs)
    two = run_part("ray2", work, args.epochs)
    four = run_part("ray4", work, args.epochs)

    print("1. Two runs: one process vs a 2-trial Ray sweep (2 CPUs, 1 per trial; trials run in parallel)")
    print(table(["path", "import s", "validate s", "ray.init s", "runs / Tuner.fit s", "shutdown s", "total s"], [
        ["one process, sequential", one["import_s"], "-", "-", one["runs_s"], "-", one["total_s"]],
        ["Ray Tune, 2 trials", two["import_s"], two["validate_s"], two["init_s"], two["fit_s"], two["shutdown_s"],
         two["total_s"]]]))
    print("\nPer run: objective() wall time in one process and inside its trial; trial wall time seen by the driver")
    print(table(["run", "objective s (one process)", "objective s (trial)", "trial start->complete s"], [
        [f"lr {lr}", one["objective_s"][i], t["objective_s"], t["wall_s"]]
        for i, (lr, t) in enumerate(zip(LEARNING_RATES, sorted(two["trials"], key=lambda t: t["trial_id"])))]))
    print(f"first trial started {two['first_start_s']:.2f} s into Tuner.fit (worker process + imports); "
          f"amortised overhead {amortised_overhead(two):.2f} CPU-s per trial")
    useful = sum(t["objective_s"] for t in four["trials"])
    print("\n3. Four trials on 2 CPUs (1 CPU each)")
    print(table(["Tuner.fit s", "peak trials at once", "sum objective s", "useful parallelism",
                 "cores busy (machine)", "overhead CPU-s / trial", "total s"], [
        [four["fit_s"], four["peak_concurrent"], useful, useful / four["fit_s"], four["cores_busy"],
         amortised_overhead(four), four["total_s"]]]))


if __name__ == "__main__":
    main()
