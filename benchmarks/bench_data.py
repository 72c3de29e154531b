"""Benchmark data preparation and loading; prints a table.

Steps (each in a fresh subprocess, so its peak RSS is its own; CPU s = user + system time of the
step, a load-independent figure when the machine is shared):
  baby-prepare      MMRec Baby -> prepared files, text features with all-MiniLM-L6-v2
  baby-load         MultiModalDataset from the prepared files (RecBole loading + alignment), then save()
  baby-load-cache   the same dataset loaded from RecBole's pickled dataset cache
  synthetic-prepare synthetic set with --synthetic-items items (hashing text, pixel-stats images)
  synthetic-load    MultiModalDataset of that set

Usage: OMP_NUM_THREADS=1 python benchmarks/bench_data.py [--baby-source DIR] [--out DIR] [--text-threads 2]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _config(root: Path, name: str, saved: Path, **extra: object):
    import recbole_neggen  # noqa: F401  (compat shims first)
    from recbole.config import Config

    return Config(model="BPR", dataset=name, config_dict={
        "data_path": str(root), "benchmark_filename": ["train", "valid", "test"],
        "load_col": {"inter": ["user_id", "item_id"]}, "checkpoint_dir": str(saved), **extra})


def run_step(step: str, args: argparse.Namespace) -> dict[str, object]:
    """Run one step in this process; returns its measurements."""
    out = Path(args.out)
    os.chdir(out)  # RecBole writes ./log
    start = time.perf_counter()
    import recbole_neggen.data.dataset  # noqa: F401  (imports are timed apart from the work)
    import recbole_neggen.data.prepare  # noqa: F401

    imports = time.perf_counter() - start
    start = time.perf_counter()
    cpu_at_start = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    info: dict[str, object] = {}
    if step == "baby-prepare":
        import torch

        from recbole_neggen.data.prepare import prepare_mmrec

        torch.set_num_threads(args.text_threads)
        res = prepare_mmrec("baby", args.baby_source, out, text_encoder=args.text_encoder, force=True)
        text = res.provenance["counts"]["features"]["text"]
        info = {"items encoded": text["count"], "encoder": text["encoder"]}
    elif step == "synthetic-prepare":
        from recbole_neggen.data.synthetic import make_synthetic

        res = make_synthetic(out, name="synthetic-big", n_items=args.synthetic_items,
                             n_users=args.synthetic_items // 2, force=True)
        info = {"interactions": sum(res.provenance["counts"]["splits"].values())}
    elif step in ("baby-load", "synthetic-load"):
        from recbole_neggen.data.dataset import MultiModalDataset

        name = "baby" if step == "baby-load" else "synthetic-big"
        ds = MultiModalDataset(_config(out, name, out / "saved"))
        info = {"features": {m: list(f.shape) for m, f in ds.item_features.items()}}
        if step == "baby-load":
            ds.save()
    elif step == "baby-load-cache":
        from recbole.data import create_dataset

        cache = out / "saved" / "baby-MultiModalDataset.pth"
        ds = create_dataset(_config(out, "baby", out / "saved", dataset_save_path=str(cache)))
        info = {"features": {m: list(f.shape) for m, f in ds.item_features.items()}}
    else:
        raise ValueError(f"unknown step {step!r}")
    info["seconds"] = round(time.perf_counter() - start, 2)
    info["import_s"] = round(imports, 2)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    info["cpu_s"] = round(usage.ru_utime + usage.ru_stime - cpu_at_start, 1)
    info["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return info


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baby-source", default="/work/shared/data/baby")
    p.add_argument("--out", help="prepared root (default: a temporary directory)")
    p.add_argument("--synthetic-items", type=int, default=50_000)
    p.add_argument("--text-threads", type=int, default=2, help="torch threads for MiniLM encoding")
    p.add_argument("--text-encoder", default="minilm", help="minilm (bf16 where native) | minilm-fp32 | hashing")
    p.add_argument("--steps", default="baby-prepare,baby-load,baby-load-cache,synthetic-prepare,synthetic-load")
    p.add_argument("--step", help=argparse.SUPPRESS)  # internal: run one step, print JSON
    args = p.parse_args()
    if args.step:
        print(json.dumps(run_step(args.step, args)))
        return
    tmp = None
    if not args.out:
        tmp = tempfile.TemporaryDirectory(prefix="bench_data_")
        args.out = tmp.name
    rows = []
    for step in args.steps.split(","):
        cmd = [sys.executable, __file__, "--step", step, "--out", args.out, "--baby-source", args.baby_source,
               "--synthetic-items", str(args.synthetic_items), "--text-threads", str(args.text_threads),
               "--text-encoder", args.text_encoder]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            sys.stderr.write(proc.stderr[-3000:])
            raise SystemExit(f"step {step} failed")
        rows.append((step, json.loads(proc.stdout.strip().splitlines()[-1])))
    print(f"\n{'step':<20}{'wall s':>8}{'CPU s':>8}{'imports s':>11}{'peak RSS MB':>13}  details")
    for step, info in rows:
        details = {k: v for k, v in info.items() if k not in ("seconds", "cpu_s", "import_s", "peak_rss_mb")}
        print(f"{step:<20}{info['seconds']:>8}{info['cpu_s']:>8}{info['import_s']:>11}{info['peak_rss_mb']:>13}"
              f"  {details}")
    print(f"\nOMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, MiniLM threads={args.text_threads}, "
          f"cpus={os.cpu_count()}, load average at the end {os.getloadavg()[0]:.1f}")
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
