"""Command line: ``train`` (default) | ``prepare`` | ``generate`` | ``bench`` | ``tune``.

    python run_recbole_neggen.py --model=NegGen --dataset=baby [--config_files a.yaml b.yaml] [--key=value ...]
    python run_recbole_neggen.py <subcommand> --help
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Callable, Sequence

SUBCOMMANDS: dict[str, str] = {
    "prepare": "recbole_neggen.data.prepare",
    "generate": "recbole_neggen.generation.pipeline",
    "bench": "recbole_neggen.experiments.bench",
    "tune": "recbole_neggen.experiments.tune",
}


def train_main(argv: Sequence[str]) -> int:
    """Train one model; unknown ``--key=value`` arguments override the config."""
    parser = argparse.ArgumentParser(
        prog="run_recbole_neggen.py",
        description="Train a model (ours or RecBole's) on a dataset; select on validation, test once. "
        f"Other subcommands: {', '.join(SUBCOMMANDS)}.",
        epilog="Any further --key=value sets a RecBole / recbole_neggen config key, e.g. --epochs=50 --neg_strategy=dns",
    )
    parser.add_argument("--model", "-m", required=True, help="model name, e.g. NegGen, LightGCN, BPR")
    parser.add_argument("--dataset", "-d", required=True, help="dataset name, e.g. baby, synthetic, ml-100k")
    parser.add_argument("--config_files", nargs="*", default=None, help="yaml files, later ones win")
    known, rest = parser.parse_known_args(list(argv))

    from recbole_neggen.config import parse_cli_overrides
    from recbole_neggen.quick_start import objective

    try:
        overrides = parse_cli_overrides(rest)
    except ValueError as exc:
        parser.error(str(exc))
    result = objective(known.model, known.dataset, known.config_files, overrides)
    summary = {k: result[k] for k in ("model", "dataset", "seed", "best_epoch", "best_valid", "test", "run_dir")}
    print(json.dumps(summary, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in SUBCOMMANDS:
        entry: Callable[[Sequence[str]], int] = importlib.import_module(SUBCOMMANDS[args[0]]).main
        return entry(args[1:])
    if args and args[0] == "train":
        args = args[1:]
    return train_main(args)
