"""Tables and figures shared by bench and tune: mean ± std cells, markdown / CSV tables, matplotlib plots."""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

DEFAULT_METRICS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")


def mean_std(values: Sequence[float], digits: int = 4) -> str:
    """``"m ± s"`` (sample std) for two or more values, ``"m"`` for one, ``"–"`` for none."""
    values = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table; ``|`` inside cells is escaped."""

    def cell(value: Any) -> str:
        return "" if value is None else str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_csv(path: Path, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
    """Write ``rows`` (missing keys left empty) with header ``columns``."""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="raise")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_metric_bars(series: Mapping[str, Mapping[str, Mapping[str, Sequence[float]]]], metrics: Sequence[str],
                     path: Path, title: str) -> None:
    """One panel per metric: x = strategy, one bar per series (model / backbone), error bar = sample std.

    Args:
        series: ``{series label: {strategy: {metric: [value per seed]}}}``.
    """
    plt = _pyplot()
    strategies = list(dict.fromkeys(s for per in series.values() for s in per))
    fig, axes = plt.subplots(1, len(metrics), figsize=(max(4.0, 1.2 * len(strategies) + 2) * len(metrics), 3.6),
                             squeeze=False)
    width = 0.8 / max(len(series), 1)
    for ax, metric in zip(axes[0], metrics):
        for k, (label, per_strategy) in enumerate(series.items()):
            xs, means, stds = [], [], []
            for x, strategy in enumerate(strategies):
                values = per_strategy.get(strategy, {}).get(metric, [])
                if values:
                    xs.append(x + (k - (len(series) - 1) / 2) * width)
                    means.append(float(np.mean(values)))
                    stds.append(float(np.std(values, ddof=1)) if len(values) > 1 else 0.0)
            ax.bar(xs, means, width, yerr=stds, capsize=3, label=label)
        ax.set_xticks(range(len(strategies)), strategies, rotation=30, ha="right")
        ax.set_title(metric)
    axes[0][0].legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_curves(curves: Mapping[str, Sequence[Sequence[tuple[int, float]]]], path: Path, ylabel: str,
                title: str) -> None:
    """Validation curves: per label the mean over runs at each epoch, shaded ± sample std.

    Args:
        curves: ``{label: [[(epoch, score), ...] per run]}``.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for label, runs in curves.items():
        by_epoch: dict[int, list[float]] = {}
        for run in runs:
            for epoch, score in run:
                by_epoch.setdefault(int(epoch), []).append(float(score))
        epochs = sorted(by_epoch)
        mean = np.array([np.mean(by_epoch[e]) for e in epochs])
        std = np.array([np.std(by_epoch[e], ddof=1) if len(by_epoch[e]) > 1 else 0.0 for e in epochs])
        (line,) = ax.plot(epochs, mean, marker="o", markersize=2, label=label)
        ax.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
