"""``tune``: a Ray Tune sweep over a yaml search space. Trials see validation only; test is evaluated once,
for the best trial by validation, from its best checkpoint.

    python run_recbole_neggen.py tune --space tune_lightgcn [--out DIR] [--cpus 1] [--gpus 0.5]
                                      [--num-cpus N | --address HOST:PORT] [--num-samples N] [--key=value ...]

Spec (``properties/experiments/tune_*.yaml`` by name, or any yaml file)::

    model: NSRec
    dataset: baby
    config: {backbone: lightgcn, epochs: 200}       # fixed keys; --key=value on the command line wins
    config_files: []                                # relative to the spec file
    space:                                          # one distribution per key; a dotted key sets a nested value
      learning_rate: {loguniform: [1.0e-4, 1.0e-2]}
      reg_weight: {uniform: [0.0, 1.0e-3]}
      n_layers: {choice: [1, 2, 3]}
      neg_params.n_candidates: {grid: [16, 32]}     # every grid value x num_samples
      embedding_size: {randint: [32, 129]}          # upper bound excluded
    num_samples: 8
    scheduler: {max_t: 200, grace_period: 5, reduction_factor: 2}   # ASHA over epochs; max_t default: epochs
    report_metrics: [recall@10, recall@20, ndcg@10, ndcg@20]

Each trial runs ``objective(..., evaluate_test=False)`` with ``run_root = <out>/runs/<trial id>`` and reports
``valid_<valid_metric>`` to Ray after every epoch; ASHA stops weak trials. Outputs in ``--out`` (default
``runs/tune/<spec name>``): ``ray/`` (Ray's experiment state: rerunning the command resumes an interrupted
sweep), ``runs/``, ``final.md`` and ``final.csv`` (parameters -> valid -> test -> checkpoint; test only for
the best trial). Joining a cluster with ``--address`` needs this package installed on every node and the
data under the same absolute paths.
"""
from __future__ import annotations

import argparse
import copy
import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import ray
from ray import tune

from recbole_neggen.experiments.probe import probe
from recbole_neggen.experiments.report import DEFAULT_METRICS, markdown_table, write_csv
from recbole_neggen.experiments.spec import SpecError, SpecFile, locate_spec

SPEC_FIELDS = ("model", "dataset", "config", "config_files", "space", "num_samples", "scheduler", "report_metrics")
SCHEDULER_FIELDS = ("max_t", "grace_period", "reduction_factor")
DISTRIBUTIONS = ("choice", "grid", "uniform", "loguniform", "randint")


@dataclass(frozen=True)
class Domain:
    """One search dimension: ``kind`` in :data:`DISTRIBUTIONS` and its values (choices, or bounds)."""

    kind: str
    values: tuple[Any, ...]

    def to_ray(self) -> Any:
        if self.kind in ("choice", "grid"):
            return (tune.choice if self.kind == "choice" else tune.grid_search)(list(self.values))
        sampler = {"uniform": tune.uniform, "loguniform": tune.loguniform, "randint": tune.randint}[self.kind]
        return sampler(*self.values)

    def example(self) -> Any:
        """A value inside the domain (first choice, or the lower bound) used to validate the config up front."""
        return self.values[0]


def _domain(spec: SpecFile, key: str) -> Domain:
    path = ("space", key)
    entry = spec.value(path, dict)
    if len(entry) != 1 or next(iter(entry)) not in DISTRIBUTIONS:
        raise spec.error(path, f"must be one of {{{' | '.join(DISTRIBUTIONS)}: ...}}, got {entry!r}")
    kind = next(iter(entry))
    if kind in ("choice", "grid"):
        values = spec.items((*path, kind), (str, int, float, bool, list, dict))
        if not values:
            raise spec.error((*path, kind), "needs at least one value")
        return Domain(kind, tuple(values))
    bounds = spec.items((*path, kind), int if kind == "randint" else (int, float))
    if len(bounds) != 2 or not bounds[0] < bounds[1] or (kind == "loguniform" and bounds[0] <= 0):
        positive = " and low > 0" if kind == "loguniform" else ""
        raise spec.error((*path, kind), f"needs [low, high] with low < high{positive}, got {bounds}")
    return Domain(kind, tuple(bounds))


@dataclass(frozen=True)
class TuneSpec:
    """A validated sweep (see the module docstring for the yaml)."""

    name: str
    model: str
    dataset: str
    config: dict[str, Any]
    config_files: tuple[str, ...]
    space: dict[str, Domain]
    num_samples: int
    max_t: int | None
    grace_period: int
    reduction_factor: float
    report_metrics: tuple[str, ...]

    @classmethod
    def load(cls, path: str | Path) -> "TuneSpec":
        """Read and validate ``path``; every error names the file, line and field."""
        spec = SpecFile.load(path)
        spec.check_keys((), SPEC_FIELDS)
        space = {key: _domain(spec, key) for key in spec.value(("space",), dict)}
        if not space:
            raise spec.error(("space",), "needs at least one key to search")
        spec.check_keys(("scheduler",), SCHEDULER_FIELDS)
        num_samples = spec.value(("num_samples",), int, 1)
        grace = spec.value(("scheduler", "grace_period"), int, 1)
        factor = spec.value(("scheduler", "reduction_factor"), (int, float), 2)
        max_t = spec.value(("scheduler", "max_t"), int, None)
        if num_samples < 1:
            raise spec.error(("num_samples",), f"must be >= 1, got {num_samples}")
        if grace < 1 or factor <= 1 or (max_t is not None and max_t < 1):
            raise spec.error(("scheduler",), f"needs max_t >= 1, grace_period >= 1, reduction_factor > 1; "
                                             f"got {max_t}, {grace}, {factor}")
        return cls(spec.name, spec.value(("model",), str), spec.value(("dataset",), str),
                   dict(spec.value(("config",), dict, {})),
                   tuple(spec.resolve(f) for f in spec.items(("config_files",), str, [])), space, num_samples,
                   max_t, grace, float(factor),
                   tuple(m.lower() for m in spec.items(("report_metrics",), str, list(DEFAULT_METRICS))))


def apply_params(config: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """``config`` with ``params`` set; ``"a.b": v`` sets ``config["a"]["b"]`` keeping the other keys of ``a``."""
    merged = copy.deepcopy(config)
    for key, value in params.items():
        *parents, leaf = key.split(".")
        target = merged
        for part in parents:
            if not isinstance(target.get(part, {}), dict):
                raise ValueError(f"cannot set {key!r}: {part!r} is {target[part]!r}, not a mapping")
            target = target.setdefault(part, {})
        target[leaf] = value
    return merged


@dataclass(frozen=True)
class TrialJob:
    """What every trial needs (picklable; absolute paths only). ``config`` holds the fixed keys plus
    ``data_path`` / ``prepared_path``; ``metric`` is the name reported to Ray, e.g. ``valid_recall@20``."""

    model: str
    dataset: str
    config_file_list: tuple[str, ...]
    config: dict[str, Any]
    runs_root: str
    metric: str
    cpus: float
    gpus: float


def run_trial(params: dict[str, Any], job: TrialJob) -> None:
    """Ray trainable: one objective() run (validation only), reporting ``{metric, epoch, run_dir}`` per epoch.

    Runs in a fresh Ray worker: imports recbole_neggen first (compat shims); never returns a result dict.
    """
    import recbole_neggen  # noqa: F401  (compat shims in the worker before recbole is used)
    import torch

    from recbole_neggen.quick_start import objective

    torch.set_num_threads(max(1, int(job.cpus)))
    trial_root = Path(job.runs_root) / tune.get_context().get_trial_id()
    before = set(trial_root.iterdir()) if trial_root.is_dir() else set()
    # RecBole sets CUDA_VISIBLE_DEVICES from gpu_id: keep the GPU(s) Ray assigned, or none.
    gpu_id = os.environ.get("CUDA_VISIBLE_DEVICES", "") if job.gpus > 0 else ""
    config_dict = {**apply_params(job.config, params), "run_root": str(trial_root), "gpu_id": gpu_id}
    run_dir: list[Path] = []

    def report(epoch: int, score: float, entry: dict[str, float]) -> None:
        if not run_dir:  # objective created exactly one new directory under this trial's root
            run_dir.append(max((p for p in trial_root.iterdir() if p not in before), key=lambda p: p.stat().st_mtime))
        tune.report({job.metric: score, "epoch": epoch, "run_dir": str(run_dir[0])})

    objective(job.model, job.dataset, list(job.config_file_list) or None, config_dict, saved=True,
              evaluate_test=False, epoch_callback=report)


class ProgressLine(tune.Callback):
    """One summary line per trial start / end: finished (done, failed), running, pending, best so far, ETA
    (from the rate of trials finished since this process started the sweep)."""

    def __init__(self, metric: str) -> None:
        self.metric = metric
        self.total, self.start, self.finished_before = 0, time.time(), None

    def setup(self, stop: Any = None, num_samples: int | None = None, total_num_samples: int | None = None,
              **info: Any) -> None:
        self.total, self.start, self.finished_before = total_num_samples or 0, time.time(), None

    def _line(self, trials: list[Any], trial: Any, status_now: str) -> None:
        """Ray calls the hooks before it updates ``trial.status``: count ``trial`` as ``status_now``."""
        status = [status_now if t is trial else t.status for t in trials]
        done, failed, running = status.count("TERMINATED"), status.count("ERROR"), status.count("RUNNING")
        finished, total = done + failed, max(self.total, len(trials))
        if self.finished_before is None:
            self.finished_before = finished
        best = [t.metric_analysis[self.metric]["max"] for t in trials if self.metric in t.metric_analysis]
        elapsed, new = time.time() - self.start, finished - self.finished_before
        eta = f"{(total - finished) * elapsed / new:.0f}s" if new else "?"
        print(f"[tune] {finished}/{total} trials finished ({done} done, {failed} failed), {running} running, "
              f"{total - finished - running} pending; best {self.metric} {max(best) if best else float('nan'):.4f}; "
              f"elapsed {elapsed:.0f}s, ETA ~{eta}", flush=True)

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._line(trials, trial, "RUNNING")

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._line(trials, trial, "TERMINATED")

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._line(trials, trial, "ERROR")


def prepare_job(spec: TuneSpec, out: Path, overrides: dict[str, Any], cpus: float, gpus: float) -> tuple[TrialJob, int]:
    """Validate the sweep in the driver (config built with an example point of the space, dataset prepared)
    and return the trial job and ASHA's ``max_t`` (default: the configured ``epochs``)."""
    fixed = {**spec.config, **overrides}
    example = apply_params(fixed, {k: d.example() for k, d in spec.space.items()})
    found = probe(spec.model, spec.dataset, list(spec.config_files), example)
    found.check_metrics(spec.report_metrics)
    job = TrialJob(spec.model, spec.dataset, spec.config_files, {**fixed, **found.paths}, str(out / "runs"),
                   f"valid_{str(found.config['valid_metric']).lower()}", cpus, gpus)
    return job, spec.max_t or int(found.config["epochs"])


def sweep(spec: TuneSpec, out: Path, job: TrialJob, max_t: int, verbose: int = 1,
          callbacks: Sequence[tune.Callback] = ()) -> tuple[Any, int]:
    """Run (or resume, when ``<out>/ray`` holds an interrupted sweep) the Ray Tune sweep; Ray must be initialised.
    ``callbacks``: extra Ray Tune callbacks (e.g. timers) next to the progress line.

    Returns:
        Ray's ``ResultGrid`` and the number of trials left unfinished (> 0 after an interruption, e.g. Ctrl+C).
    """
    from ray.tune.schedulers import ASHAScheduler

    trainable = tune.with_resources(tune.with_parameters(run_trial, job=job), {"cpu": job.cpus, "gpu": job.gpus})
    experiment = out / "ray"
    if tune.Tuner.can_restore(str(experiment)):
        print(f"[tune] resuming the sweep in {experiment}", flush=True)
        tuner = tune.Tuner.restore(str(experiment), trainable, resume_unfinished=True, resume_errored=True)
    else:
        tuner = tune.Tuner(
            trainable,
            param_space={key: domain.to_ray() for key, domain in spec.space.items()},
            tune_config=tune.TuneConfig(
                metric=job.metric, mode="max", num_samples=spec.num_samples,
                scheduler=ASHAScheduler(max_t=max_t, grace_period=min(spec.grace_period, max_t),
                                        reduction_factor=spec.reduction_factor)),
            run_config=tune.RunConfig(name=experiment.name, storage_path=str(out), verbose=verbose,
                                      callbacks=[ProgressLine(job.metric), *callbacks]),
        )
    results = tuner.fit()
    # After an interruption Ray marks its in-memory trials terminated; the saved experiment state does not.
    saved = tune.ExperimentAnalysis(str(experiment)).trials
    return results, sum(t.status not in ("TERMINATED", "ERROR") for t in saved)


def final_rows(results: Any, spec: TuneSpec, metric: str, max_t: int) -> list[dict[str, Any]]:
    """One row per trial (parameters, status, epochs, best valid, run dir, checkpoint); the best trial by
    validation is evaluated on test (once, :func:`~recbole_neggen.experiments.evaluate.evaluate_run`).

    Status: ``completed`` (objective returned: all epochs or RecBole's early stopping), ``reached max_t``,
    ``stopped early (ASHA)``, ``error: <type>`` or ``no report``."""
    from recbole_neggen.experiments.evaluate import evaluate_run, find_checkpoint

    rows = []
    for result in results:
        history = result.metrics_dataframe
        row: dict[str, Any] = {"trial_id": (result.metrics or {}).get("trial_id"), "status": "no report",
                               **{f"param {k}": (result.config or {}).get(k) for k in spec.space}}
        if history is not None and metric in history and history[metric].notna().any():
            best = history[metric].idxmax()
            run_dir = Path(history["run_dir"].dropna().iloc[-1])
            row.update({"epochs": len(history), "best_epoch": int(history.loc[best, "epoch"]),
                        metric: float(history.loc[best, metric]), "run_dir": str(run_dir),
                        "status": "completed" if (run_dir / "result.json").is_file()
                        else "reached max_t" if len(history) >= max_t else "stopped early (ASHA)"})
            try:
                row["checkpoint"] = str(find_checkpoint(run_dir))
            except FileNotFoundError as exc:
                row["checkpoint"] = f"missing: {exc}"
        if result.error is not None:
            row["status"] = f"error: {type(result.error).__name__}"
        rows.append(row)
    scored = [r for r in rows if metric in r and not str(r.get("checkpoint", "missing")).startswith("missing")]
    if scored:
        best_row = max(scored, key=lambda r: r[metric])
        test = evaluate_run(best_row["run_dir"])["test"]
        best_row.update({f"test_{m}": test.get(m) for m in spec.report_metrics}, best="yes")
    return rows


def write_final(rows: list[dict[str, Any]], spec: TuneSpec, metric: str, out: Path) -> str:
    """Write ``final.csv`` and ``final.md`` (best trial first) and return the markdown."""
    columns = (["best", "trial_id", "status", *[f"param {k}" for k in spec.space], "epochs", "best_epoch", metric]
               + [f"test_{m}" for m in spec.report_metrics] + ["checkpoint", "run_dir"])
    ordered = sorted(rows, key=lambda r: (r.get("best") != "yes", -(r.get(metric) or -math.inf)))
    write_csv(out / "final.csv", columns, ordered)

    def fmt(value: Any) -> Any:
        return f"{value:.4g}" if isinstance(value, float) else value

    table = (f"# tune {spec.name}: {spec.model} on {spec.dataset}\n\n"
             f"{len(rows)} trials; selected by best {metric}; test evaluated only for the selected trial.\n\n"
             + markdown_table(columns, [[fmt(r.get(c)) for c in columns] for r in ordered]))
    (out / "final.md").write_text(table)
    return table


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="run_recbole_neggen.py tune", description=__doc__.split("\n\n")[0],
                                     epilog="Further --key=value arguments override fixed config keys of every trial.")
    parser.add_argument("--space", required=True, help="spec name in properties/experiments/ or a yaml file")
    parser.add_argument("--out", help="output directory (default runs/tune/<spec name>)")
    parser.add_argument("--cpus", type=float, default=1.0, help="CPUs per trial (torch threads = int(cpus))")
    parser.add_argument("--gpus", type=float, default=0.0, help="GPUs per trial, fractional allowed (e.g. 0.5)")
    parser.add_argument("--num-cpus", type=int, help="CPUs of the local Ray instance (default: all)")
    parser.add_argument("--address", help="join an existing Ray cluster (e.g. auto or HOST:PORT)")
    parser.add_argument("--num-samples", type=int, help="override the spec's num_samples")
    parser.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2, 3), help="Ray's reporter verbosity")
    known, rest = parser.parse_known_args(list(argv))
    from recbole_neggen.config import parse_cli_overrides

    try:
        overrides = parse_cli_overrides(rest)
        spec = TuneSpec.load(locate_spec(known.space, "tune_"))
        if known.num_samples is not None:
            spec = replace(spec, num_samples=known.num_samples)
    except (ValueError, SpecError) as exc:
        parser.error(str(exc))
    out = Path(known.out or Path("runs") / "tune" / spec.name).resolve()
    out.mkdir(parents=True, exist_ok=True)
    try:
        job, max_t = prepare_job(spec, out, overrides, known.cpus, known.gpus)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        parser.error(f"invalid sweep {spec.name}: {type(exc).__name__}: {exc}")
    if known.address:
        ray.init(address=known.address, log_to_driver=known.verbose >= 2)
    else:
        ray.init(num_cpus=known.num_cpus, include_dashboard=False, log_to_driver=known.verbose >= 2)
    try:
        results, unfinished = sweep(spec, out, job, max_t, known.verbose)
        if unfinished:
            print(f"[tune] sweep interrupted with {unfinished} trial(s) unfinished; run the same command again to "
                  f"resume it from {out / 'ray'}", flush=True)
            return 130
        rows = final_rows(results, spec, job.metric, max_t)
    finally:
        ray.shutdown()
    print(write_final(rows, spec, job.metric, out))
    failed = [r for r in rows if str(r["status"]).startswith("error")]
    print(f"[tune] {len(rows)} trials, {len(failed)} failed; best: "
          f"{next((r['run_dir'] for r in rows if r.get('best') == 'yes'), 'none')}; tables in {out}")
    return 0 if any(r.get("best") == "yes" for r in rows) else 1
