"""Full-sort evaluation pass alone (default Baby test split, LightGCN 1 layer after one training epoch):
median of ``--repeats`` passes, one line. Cheap enough to alternate between two checkouts:

    for i in 1 2 3; do for tree in ../old .; do (cd $tree && OMP_NUM_THREADS=1 PYTHONPATH=. \
        python benchmarks/bench_eval.py --tag $tree); done; done
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_hotpaths import build, common_settings, time_epoch, time_eval  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="baby")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--tag", default="", help="label printed with the result (e.g. the checkout)")
    args = parser.parse_args()
    overrides = {**common_settings("cpu", "minilm"), "n_layers": 1, "neg_strategy": "rns"}
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        _, trainer, train, test, _ = build("NSRec", args.dataset, overrides, Path(tmp))
        time_epoch(trainer, train, 0)
        seconds = time_eval(trainer, test, args.repeats)
    print(f"{args.tag} full-sort eval pass, {args.dataset} test split: {seconds:.3f} s (median of {args.repeats}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
