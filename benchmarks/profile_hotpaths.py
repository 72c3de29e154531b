"""torch.profiler tables of one training epoch and one full-sort evaluation pass (default Baby, mmrec protocol).

    OMP_NUM_THREADS=1 NEGGEN_DATA_PATH=../shared/data python benchmarks/profile_hotpaths.py [--dataset baby]
        [--model NSRec] [--strategy rns] [--n-layers 1] [--top 15] [--neggen-encoder minilm-fp32]

Prints, per phase, the operators sorted by self CPU time. One warm-up epoch runs first, unprofiled.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_hotpaths import build, common_settings  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="baby")
    parser.add_argument("--model", default="NSRec")
    parser.add_argument("--strategy", default="rns")
    parser.add_argument("--candidates", type=int, default=32)
    parser.add_argument("--n-layers", type=int, default=1)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--neggen-encoder", default="minilm")
    args = parser.parse_args()
    overrides = {**common_settings("cpu", args.neggen_encoder), "n_layers": args.n_layers, "neg_strategy": args.strategy,
                 "neg_params": {} if args.strategy == "rns" else {"n_candidates": args.candidates}}
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        _, trainer, train, test, _ = build(args.model, args.dataset, overrides, Path(tmp))
        trainer.model.train()
        trainer._train_epoch(train, 0)  # warm-up
        phases = {"training epoch": lambda: trainer._train_epoch(train, 1),
                  "full-sort evaluation pass": lambda: trainer.evaluate(test, load_best_model=False)}
        for name, run in phases.items():
            trainer.model.train(name == "training epoch")
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                run()
            print(f"\n## {name}: {args.model} / {args.strategy}, {args.n_layers} layer(s), "
                  f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}\n")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
