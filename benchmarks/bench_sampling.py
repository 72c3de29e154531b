"""Throughput of the candidate sampler and per-strategy selection time on Baby-sized data.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_sampling.py [--inter PATH] [--repeats N]``.
Uses the training rows (``x_label == 0``) of MMRec's ``baby.inter`` when the file exists, otherwise a random
CSR of the same size (19,445 users, 7,050 items, 118,551 interactions). Ids are shifted by one as in RecBole
(0 = [PAD]). Prints two tables: sampler rows/s and candidates/s over one epoch in batches of B rows, and
strategy selection time (forward, and forward + backward) for B=2048, M=32, L+1=4, d=64.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from recbole_neggen.sampling import STRATEGIES, CandidateSampler, build_strategy

BABY = Path("/work/shared/data/baby/baby.inter")
N_USERS, N_ITEMS, N_TRAIN = 19_445, 7_050, 118_551


def load_pairs(path: Path, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Training (user, item) pairs in RecBole-style ids (both shifted by +1) and a description."""
    if path.exists():
        table = np.loadtxt(path, dtype=np.int64, delimiter="\t", skiprows=1)
        train = table[table[:, 2] == 0]
        return train[:, 0] + 1, train[:, 1] + 1, f"{path} (x_label == 0)"
    rng = np.random.default_rng(seed)
    keys = np.unique(rng.integers(0, N_USERS * N_ITEMS, size=int(N_TRAIN * 1.01)))[:N_TRAIN]
    return keys // N_ITEMS + 1, keys % N_ITEMS + 1, "synthetic uniform random CSR"


def best_of(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn`` in seconds after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_sampler(users: np.ndarray, items: np.ndarray, batch: int, repeats: int) -> None:
    n_users, n_items = N_USERS + 1, N_ITEMS + 1
    epoch_users = torch.from_numpy(users)[torch.randperm(len(users), generator=torch.Generator().manual_seed(0))]
    print(f"\nCandidate sampler: one shuffled epoch = {len(users):,} rows in batches of {batch}, median of {repeats}")
    header = ("distribution", "pool", "C", "build s", "epoch s", "rows/s", "candidates/s")
    print("{:<12} {:<12} {:>3} {:>8} {:>8} {:>12} {:>14}".format(*header))
    for distribution in ("uniform", "popularity"):
        for pool in ("all", "train_items"):
            start = time.perf_counter()
            sampler = CandidateSampler.from_pairs(users, items, n_users, n_items, distribution=distribution, pool=pool)
            build = time.perf_counter() - start
            for c in (1, 32):
                gen = torch.Generator().manual_seed(0)

                def epoch() -> None:
                    for lo in range(0, epoch_users.numel(), batch):
                        sampler.sample(epoch_users[lo : lo + batch], c, gen)

                sec = best_of(epoch, repeats)
                rows = epoch_users.numel() / sec
                print(f"{distribution:<12} {pool:<12} {c:>3} {build:>8.3f} {sec:>8.3f} {rows:>12,.0f} "
                      f"{rows * c:>14,.0f}")


def bench_strategies(batch: int, m: int, layers: int, dim: int, repeats: int) -> None:
    print(f"\nStrategy selection: B={batch}, M={m} (RNS/PNS: 1), L+1={layers}, d={dim}, median of {repeats}, ms")
    print(f"{'strategy':<10} {'M':>3} {'select':>8} {'select+backward':>16}")
    gen = torch.Generator().manual_seed(0)
    for name in STRATEGIES.names():
        n_cand = 1 if name in ("rns", "pns") else m
        strategy = build_strategy(name, {"n_candidates": n_cand}, dim)
        user = torch.randn(batch, layers, dim, generator=gen, requires_grad=True)
        pos = torch.randn(batch, layers, dim, generator=gen, requires_grad=True)
        cand = torch.randn(batch, n_cand, layers, dim, generator=gen, requires_grad=True)

        def forward() -> None:
            strategy.select(user, pos, cand, gen)

        def forward_backward() -> None:
            sel = strategy.select(user, pos, cand, gen)
            loss = sel.neg.sum() + (sel.aux_loss if sel.aux_loss is not None else 0.0)
            loss.backward()

        fwd = best_of(forward, repeats) * 1e3
        both = best_of(forward_backward, repeats) * 1e3
        print(f"{name:<10} {n_cand:>3} {fwd:>8.2f} {both:>16.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inter", type=Path, default=BABY, help="MMRec .inter file (userID, itemID, x_label)")
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    users, items, source = load_pairs(args.inter, args.seed)
    print(f"data: {source}: {len(np.unique(users)):,} users, {len(np.unique(items)):,} items, {len(users):,} pairs")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    bench_sampler(users, items, args.batch, args.repeats)
    bench_strategies(args.batch, 32, 4, 64, args.repeats)


if __name__ == "__main__":
    main()
