"""``bench``: models x negative strategies x backbones x seeds on one dataset, each run in its own process.

    python run_recbole_neggen.py bench --grid bench_synthetic [--out DIR] [--jobs 2] [--seeds 1 2]
                                       [--dry-run] [--key=value ...]

Spec (``properties/experiments/bench_*.yaml`` by name, or any yaml file)::

    dataset: synthetic
    models: [NSRec, BPR, {name: NegGen, config: {...}, strategies: []}]
                                # models with a negative strategy (NSRec, NegGen) cross with strategies and
                                # backbones (a model's own ``strategies`` list replaces the grid's; [] = its
                                # configured strategy); RecBole's built-ins run once per seed.
    strategies: [rns, {name: dns, label: dns_m16, neg_params: {n_candidates: 16}}]
    backbones: [mf, lightgcn]   # optional; default: the configured backbone
    seeds: [999, 1000, 1001]
    config: {epochs: 1000}      # fixed keys for every run; --key=value on the command line wins
    config_files: []            # relative to the spec file
    report_metrics: [recall@10, recall@20, ndcg@10, ndcg@20]

Outputs in ``--out`` (default ``runs/bench/<spec name>``): ``runs.csv`` (one row per run, appended as runs
end), ``table.md`` (mean ± std per cell), ``metrics.png`` (test metrics per strategy, error bars),
``valid_curves.png``, ``runs/`` (run directories), ``logs/`` (one log per run), ``jobs/``.
Resume: a run whose (config_hash, seed) already has an ``ok`` row is skipped; failed runs are retried. A run
that fails (invalid config or crash) gets a ``failed`` row with the error and the rest go on; the exit
status is then 1. Progress: a bar with done / running / failed / skipped counts and the ETA.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

from tqdm.auto import tqdm

from recbole_neggen.diagnostics import DIAGNOSTICS_FILE, plot_diagnostics
from recbole_neggen.experiments.probe import Probe, probe
from recbole_neggen.experiments.report import DEFAULT_METRICS, markdown_table, mean_std, plot_curves, plot_metric_bars
from recbole_neggen.experiments.spec import FieldPath, SpecError, SpecFile, locate_spec

NOT_APPLICABLE = "-"
SPEC_FIELDS = ("dataset", "models", "strategies", "backbones", "seeds", "config", "config_files", "report_metrics")


@dataclass(frozen=True)
class StrategyVariant:
    """A negative strategy with its hyperparameters, named ``label`` in tables (default: the strategy name)."""

    label: str
    name: str
    params: dict[str, Any]


@dataclass(frozen=True)
class ModelEntry:
    """A model and config keys that apply to its runs only. ``takes_negatives``: the model has a negative
    strategy, so it crosses with ``strategies`` (its own list when set; empty = the configured strategy)."""

    name: str
    config: dict[str, Any]
    takes_negatives: bool
    strategies: tuple[StrategyVariant, ...] | None = None


def _strategies(spec: SpecFile, path: FieldPath, default: list[Any]) -> tuple[StrategyVariant, ...]:
    """A strategy list: names or ``{name, label, neg_params}`` mappings, labels unique."""
    variants: list[StrategyVariant] = []
    for i, entry in enumerate(spec.value(path, list, default)):
        if isinstance(entry, dict):
            spec.check_keys((*path, i), ("name", "label", "neg_params"))
            name = spec.value((*path, i, "name"), str)
            variant = StrategyVariant(spec.value((*path, i, "label"), str, name), name,
                                      dict(spec.value((*path, i, "neg_params"), dict, {})))
        elif isinstance(entry, str):
            variant = StrategyVariant(entry, entry, {})
        else:
            raise spec.error((*path, i), "must be a strategy name or {name, label, neg_params}")
        if variant.label in {s.label for s in variants}:
            raise spec.error((*path, i), f"label {variant.label!r} used twice; give each variant a label")
        variants.append(variant)
    return tuple(variants)


@dataclass(frozen=True)
class BenchSpec:
    """A validated bench grid (see the module docstring for the yaml)."""

    name: str
    dataset: str
    models: tuple[ModelEntry, ...]
    strategies: tuple[StrategyVariant, ...]
    backbones: tuple[str, ...]
    seeds: tuple[int, ...]
    config: dict[str, Any]
    config_files: tuple[str, ...]
    report_metrics: tuple[str, ...]

    @classmethod
    def load(cls, path: str | Path) -> "BenchSpec":
        """Read and validate ``path``; every error names the file, line and field."""
        from recbole_neggen.utils import get_model

        spec = SpecFile.load(path)
        spec.check_keys((), SPEC_FIELDS)
        models = []
        for i, entry in enumerate(spec.value(("models",), list)):
            if isinstance(entry, dict):
                spec.check_keys(("models", i), ("name", "config", "strategies"))
                name, config = spec.value(("models", i, "name"), str), spec.value(("models", i, "config"), dict, {})
                own = _strategies(spec, ("models", i, "strategies"), []) if "strategies" in entry else None
            elif isinstance(entry, str):
                name, config, own = entry, {}, None
            else:
                raise spec.error(("models", i), "must be a model name or {name, config, strategies}")
            try:
                takes_negatives = bool(getattr(get_model(name), "uses_candidates", False))
            except ValueError as exc:
                raise spec.error(("models", i), str(exc)) from None
            models.append(ModelEntry(name, dict(config), takes_negatives, own))
        if not models:
            raise spec.error(("models",), "needs at least one model")
        strategies = _strategies(spec, ("strategies",), ["rns"])
        backbones = spec.items(("backbones",), str, [])
        seeds = spec.items(("seeds",), int, [999])
        if not seeds or len(set(seeds)) != len(seeds):
            raise spec.error(("seeds",), f"needs distinct integer seeds, got {seeds}")
        metrics = [m.lower() for m in spec.items(("report_metrics",), str, list(DEFAULT_METRICS))]
        files = [spec.resolve(f) for f in spec.items(("config_files",), str, [])]
        return cls(spec.name, spec.value(("dataset",), str), tuple(models), strategies, tuple(backbones),
                   tuple(seeds), dict(spec.value(("config",), dict, {})), tuple(files), tuple(metrics))


@dataclass
class Run:
    """One (cell, seed). ``probe`` is ``None`` and ``error`` set when the cell's config is invalid."""

    model: str
    backbone: str
    strategy: str
    neg_params: dict[str, Any]
    seed: int
    config_dict: dict[str, Any]
    probe: Probe | None = None
    error: str | None = None

    @property
    def cell(self) -> tuple[str, str, str]:
        return self.model, self.backbone, self.strategy

    @property
    def config_hash(self) -> str:
        return self.probe.config_hash if self.probe else ""

    @property
    def key(self) -> str:
        """File name of the run's job and log: ``<config hash>-s<seed>``."""
        return f"{self.config_hash}-s{self.seed}"


def plan(spec: BenchSpec, overrides: dict[str, Any], seeds: Sequence[int] | None = None) -> list[Run]:
    """Expand the grid into runs, probing each cell once (Config built, dataset prepared, hash computed).

    Key precedence: spec ``config`` < model ``config`` < grid axes (backbone, strategy, seed) < ``overrides``.
    """
    runs: list[Run] = []
    for entry in spec.models:
        own = spec.strategies if entry.strategies is None else entry.strategies
        variants: list[StrategyVariant | None] = list(own or [None]) if entry.takes_negatives else [None]
        backbones: list[str | None] = list(spec.backbones or [None]) if entry.takes_negatives else [None]
        for backbone in backbones:
            for variant in variants:
                cell_runs = []
                for seed in seeds or spec.seeds:
                    config_dict = {**spec.config, **entry.config}
                    if backbone is not None:
                        config_dict["backbone"] = backbone
                    if variant is not None:
                        config_dict["neg_strategy"], config_dict["neg_params"] = variant.name, dict(variant.params)
                    config_dict = {**config_dict, "seed": seed, **overrides}
                    cell_runs.append(Run(entry.name, NOT_APPLICABLE, variant.label if variant else NOT_APPLICABLE,
                                         dict(config_dict.get("neg_params") or {}), seed, config_dict))
                _probe_cell(spec, entry, cell_runs)
                runs += cell_runs
    return runs


def _probe_cell(spec: BenchSpec, entry: ModelEntry, cell_runs: list[Run]) -> None:
    """Probe the cell once (the hash excludes the seed); fill in hash, paths, and the backbone / strategy
    labels of models with negatives from the resolved config (package defaults included)."""
    try:
        found = probe(entry.name, spec.dataset, list(spec.config_files), cell_runs[0].config_dict)
        found.check_metrics(spec.report_metrics)
    except Exception as exc:  # noqa: BLE001  (an invalid cell is reported as failed; the others still run)
        found, error = None, f"{type(exc).__name__}: {exc}"
    else:
        error = None
    for run in cell_runs:
        run.probe, run.error = found, error
        setting = found.config if found else run.config_dict
        if entry.takes_negatives:
            run.backbone = str(setting["backbone"] if "backbone" in setting else "default")
            if run.strategy == NOT_APPLICABLE:  # the model's own configured strategy
                run.strategy = str(setting["neg_strategy"] if "neg_strategy" in setting else "default")
                run.neg_params = dict(setting["neg_params"] or {}) if "neg_params" in setting else {}
        if found:
            run.config_dict.update(found.paths)


def csv_columns(metrics: Sequence[str]) -> list[str]:
    """Header of ``runs.csv`` for the grid's report metrics."""
    return (["config_hash", "seed", "status", "model", "backbone", "strategy", "neg_params", "dataset",
             "valid_metric", "best_valid_score"] + [f"valid_{m}" for m in metrics] + [f"test_{m}" for m in metrics]
            + ["best_epoch", "epochs_run", "wall_time_s", "process_time_s", "peak_rss_mb", "run_dir", "log", "error",
               "finished_at"])


class RunsCSV:
    """``runs.csv``: one row per finished run, appended and flushed as soon as the run ends."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        self.path, self.columns = path, columns
        if path.is_file() and path.stat().st_size:
            with open(path, newline="") as handle:
                header = next(csv.reader(handle))
            if header != columns:
                raise ValueError(f"{path}: its columns {header} differ from this grid's {columns} "
                                 "(report_metrics changed?); use another --out")

    def rows(self) -> list[dict[str, str]]:
        if not self.path.is_file():
            return []
        with open(self.path, newline="") as handle:
            return list(csv.DictReader(handle))

    def finished(self) -> set[tuple[str, str]]:
        """(config_hash, seed) of every run with an ``ok`` row."""
        return {(r["config_hash"], r["seed"]) for r in self.rows() if r["status"] == "ok"}

    def append(self, row: dict[str, Any]) -> None:
        new = not self.path.is_file() or not self.path.stat().st_size
        with open(self.path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns, extrasaction="raise")
            if new:
                writer.writeheader()
            writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in self.columns})


def _row(run: Run, spec: BenchSpec, outcome: dict[str, Any], log: Path | None, elapsed: float) -> dict[str, Any]:
    base = {"config_hash": run.config_hash, "seed": run.seed, "status": outcome["status"], "model": run.model,
            "backbone": run.backbone, "strategy": run.strategy,
            "neg_params": json.dumps(run.neg_params, sort_keys=True),
            "dataset": spec.dataset, "process_time_s": round(elapsed, 2), "log": str(log) if log else None,
            "finished_at": datetime.now().isoformat(timespec="seconds")}
    if outcome["status"] != "ok":
        return {**base, "error": outcome["error"], "peak_rss_mb": outcome.get("peak_rss_mb")}
    result = outcome["result"]
    return {**base, "valid_metric": result["valid_metric"], "best_valid_score": result["best_valid_score"],
            **{f"valid_{m}": result["best_valid"].get(m) for m in spec.report_metrics},
            **{f"test_{m}": (result["test"] or {}).get(m) for m in spec.report_metrics},
            **{k: result[k] for k in ("best_epoch", "epochs_run", "wall_time_s", "peak_rss_mb", "run_dir")}}


def execute(run: Run, spec: BenchSpec, out: Path) -> dict[str, Any]:
    """Run one (cell, seed) in a child process and return its ``runs.csv`` row (never raises for the run)."""
    if run.probe is None:
        return _row(run, spec, {"status": "failed", "error": run.error}, None, 0.0)
    job_path, output = out / "jobs" / f"{run.key}.json", out / "jobs" / f"{run.key}.out.json"
    log = out / "logs" / f"{run.key}.log"
    output.unlink(missing_ok=True)
    job = {"model": run.model, "dataset": spec.dataset, "config_file_list": list(spec.config_files),
           "config_dict": {**run.config_dict, "run_root": str(out / "runs")}, "output": str(output)}
    job_path.write_text(json.dumps(job, indent=2))
    package_root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    start = time.time()
    with open(log, "w") as handle:
        proc = subprocess.run([sys.executable, "-m", "recbole_neggen.experiments.cell", str(job_path)],
                              stdout=handle, stderr=subprocess.STDOUT, env=env, check=False)
    elapsed = time.time() - start
    if output.is_file():
        outcome = json.loads(output.read_text())
    else:
        tail = log.read_text().strip().splitlines()[-1:] or [""]
        outcome = {"status": "failed", "error": f"process exited with status {proc.returncode}: {tail[0]}"}
    return _row(run, spec, outcome, log, elapsed)


@dataclass
class Progress:
    """Counts shown on the progress bar."""

    done: int = 0
    failed: int = 0
    skipped: int = 0
    running: int = 0
    failures: list[str] = field(default_factory=list)

    def postfix(self) -> dict[str, int]:
        return {"done": self.done, "running": self.running, "failed": self.failed, "skipped": self.skipped}


def run_all(runs: list[Run], spec: BenchSpec, out: Path, jobs: int) -> Progress:
    """Execute every run not finished yet, ``jobs`` at a time; rows are appended to ``runs.csv`` as they end.

    The first run of each model goes in a first wave, the rest after it: lazy per-model caches (NegGen's
    negative bank) are then built by one process, never by several at once.
    """
    for sub in ("runs", "logs", "jobs"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    table = RunsCSV(out / "runs.csv", csv_columns(spec.report_metrics))
    finished = table.finished()
    todo = [r for r in runs if (r.config_hash, str(r.seed)) not in finished]
    first_of_model: dict[str, Run] = {}
    for run in todo:
        first_of_model.setdefault(run.model, run)
    firsts = {id(run) for run in first_of_model.values()}
    waves = [[r for r in todo if id(r) in firsts], [r for r in todo if id(r) not in firsts]]
    progress = Progress(skipped=len(runs) - len(todo))
    bar = tqdm(total=len(todo), desc=f"bench {spec.name}", unit="run", dynamic_ncols=True)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for wave in waves:
            _drain({pool.submit(execute, run, spec, out) for run in wave}, table, progress, bar)
    bar.close()
    return progress


def _drain(pending: set[Future], table: RunsCSV, progress: Progress, bar: Any) -> None:
    """Wait for ``pending`` runs, appending each row as it ends and refreshing the progress bar."""
    shown: dict[str, int] = {}
    while pending:
        progress.running = sum(f.running() for f in pending)
        if progress.postfix() != shown:
            shown = progress.postfix()
            bar.set_postfix(shown)
        completed, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
        for future in completed:
            row = future.result()
            table.append(row)
            if row["status"] == "ok":
                progress.done += 1
            else:
                progress.failed += 1
                progress.failures.append(f"{row['model']}/{row['backbone']}/{row['strategy']} seed {row['seed']}: "
                                         f"{row['error']}" + (f" (log: {row['log']})" if row["log"] else ""))
            bar.update(1)
    progress.running = 0
    bar.set_postfix(progress.postfix())


def _floats(rows: list[dict[str, str]], name: str) -> list[float]:
    return [float(r[name]) for r in rows if r.get(name) not in (None, "")]


def summarize(runs: list[Run], spec: BenchSpec, out: Path) -> str:
    """Write ``table.md``, ``metrics.png``, ``valid_curves.png`` and, for runs with ``neg_diagnostics: true``,
    ``diagnostics/diagnostics_<measure>.png`` (one line per cell, first seed) from this grid's rows; return the table."""
    latest: dict[tuple[str, str], dict[str, str]] = {}
    for row in RunsCSV(out / "runs.csv", csv_columns(spec.report_metrics)).rows():
        key = (row["config_hash"], row["seed"])
        if row["status"] == "ok" or latest.get(key, {}).get("status") != "ok":
            latest[key] = row
    cells: dict[tuple[str, str, str], list[dict[str, str]]] = {}
    for run in runs:
        row = latest.get((run.config_hash, str(run.seed)), {"status": "missing"}) if run.probe else {"status": "failed"}
        cells.setdefault(run.cell, []).append(row)
    valid_metric = next((r["valid_metric"] for rows in cells.values() for r in rows if r["status"] == "ok"), "valid")
    header = ["model", "backbone", "strategy", "runs ok", "failed", f"valid {valid_metric}",
              *[f"test {m}" for m in spec.report_metrics], "best epoch", "epochs", "wall s", "peak MiB"]
    body, bars, curves, diagnostics = [], {}, {}, {}
    for (model, backbone, strategy), rows in cells.items():
        ok = [r for r in rows if r["status"] == "ok"]
        peak = _floats(ok, "peak_rss_mb")
        body.append([model, backbone, strategy, f"{len(ok)}/{len(rows)}", sum(r["status"] == "failed" for r in rows),
                     mean_std(_floats(ok, "best_valid_score")),
                     *[mean_std(_floats(ok, f"test_{m}")) for m in spec.report_metrics],
                     mean_std(_floats(ok, "best_epoch"), 1), mean_std(_floats(ok, "epochs_run"), 1),
                     mean_std(_floats(ok, "wall_time_s"), 1), f"{max(peak):.0f}" if peak else "–"])
        if ok:
            series = model if backbone == NOT_APPLICABLE else f"{model}/{backbone}"
            bars.setdefault(series, {})[strategy] = {m: _floats(ok, f"test_{m}") for m in spec.report_metrics}
            histories = [json.loads((Path(r["run_dir"]) / "result.json").read_text())["valid_history"] for r in ok]
            label = series if strategy == NOT_APPLICABLE else f"{series}/{strategy}"
            curves[label] = [[(e["epoch"], e["valid_score"]) for e in history] for history in histories]
            first_csv = Path(ok[0]["run_dir"]) / DIAGNOSTICS_FILE  # runs with neg_diagnostics: true (first seed)
            if first_csv.is_file():
                diagnostics[label] = first_csv
    table = (f"# bench {spec.name}: {spec.dataset}, seeds {', '.join(map(str, sorted({r.seed for r in runs})))}\n\n"
             f"Mean ± sample std over seeds; test at the best-validation epoch (selected on {valid_metric}).\n\n"
             + markdown_table(header, body))
    (out / "table.md").write_text(table)
    if bars:
        plot_metric_bars(bars, spec.report_metrics, out / "metrics.png", f"{spec.dataset}: test metrics (mean ± std)")
        plot_curves(curves, out / "valid_curves.png", f"valid {valid_metric}", f"{spec.dataset}: validation curves")
    if diagnostics:
        plot_diagnostics(diagnostics, out / "diagnostics")
    return table


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="run_recbole_neggen.py bench", description=__doc__.split("\n\n")[0],
                                     epilog="Further --key=value arguments override config keys of every run.")
    parser.add_argument("--grid", required=True, help="spec name in properties/experiments/ or a yaml file")
    parser.add_argument("--out", help="output directory (default runs/bench/<spec name>)")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (child processes)")
    parser.add_argument("--seeds", type=int, nargs="+", help="override the spec's seeds")
    parser.add_argument("--dry-run", action="store_true", help="list the runs and whether they are done; run nothing")
    known, rest = parser.parse_known_args(list(argv))
    from recbole_neggen.config import parse_cli_overrides

    try:
        overrides = parse_cli_overrides(rest)
        spec = BenchSpec.load(locate_spec(known.grid, "bench_"))
    except (ValueError, SpecError) as exc:
        parser.error(str(exc))
    out = Path(known.out or Path("runs") / "bench" / spec.name).resolve()
    out.mkdir(parents=True, exist_ok=True)
    runs = plan(spec, overrides, known.seeds)
    invalid = sorted({f"{'/'.join(r.cell)}: {r.error}" for r in runs if r.probe is None})
    for line in invalid:
        print(f"[bench] invalid cell (reported as failed): {line}", file=sys.stderr)
    if known.dry_run:
        finished = RunsCSV(out / "runs.csv", csv_columns(spec.report_metrics)).finished()
        print(markdown_table(["model", "backbone", "strategy", "seed", "config hash", "state"], [
            [*r.cell, r.seed, r.config_hash, "done" if (r.config_hash, str(r.seed)) in finished
             else ("invalid" if r.probe is None else "to run")] for r in runs]))
        return 0
    progress = run_all(runs, spec, out, known.jobs)
    print(summarize(runs, spec, out))
    print(f"[bench] {progress.done} run(s) done, {progress.skipped} skipped (already done), {progress.failed} failed; "
          f"outputs in {out}")
    for line in progress.failures:
        print(f"[bench] FAILED {line}", file=sys.stderr)
    return 1 if progress.failed else 0
