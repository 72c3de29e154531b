"""The sparse product behind every LightGCN / FREEDOM layer, ``Â @ X`` on Baby's normalised user-item graph.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_spmm.py [--inter PATH] [--dim 64] [--repeats 20]``.
Compares ``torch.sparse.mm`` on the CSR matrix (what propagation used before), scipy's CSR product (a
reference point) and :func:`recbole_neggen.model.backbones.csr_matmul` (the weighted ``embedding_bag``
sum propagation uses now); then one forward + backward of :func:`propagate` against ``torch.sparse.mm``
with autograd. Medians of ``--repeats`` calls after a warm-up; nothing is asserted.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import scipy.sparse as sp
import torch

from recbole_neggen.model.backbones import bipartite_adjacency, csr_matmul, propagate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sampling import BABY, N_ITEMS, N_USERS, best_of, load_pairs  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inter", type=Path, default=BABY)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    users, items, source = load_pairs(args.inter, seed=0)
    a = bipartite_adjacency(torch.from_numpy(users), torch.from_numpy(items), N_USERS + 1, N_ITEMS + 1)
    n = a.shape[0]
    x = torch.randn(n, args.dim, generator=torch.Generator().manual_seed(0))
    scipy_a = sp.csr_matrix((a.values().numpy(), a.col_indices().numpy(), a.crow_indices().numpy()), shape=(n, n))
    x_np = x.numpy()
    torch.testing.assert_close(csr_matmul(a, x), torch.sparse.mm(a, x))

    leaf = x.clone().requires_grad_()
    upstream = torch.randn(n, args.dim, generator=torch.Generator().manual_seed(1))  # a dense gradient, as in training

    def autograd_sparse_mm() -> None:
        torch.autograd.grad(torch.sparse.mm(a, leaf), leaf, upstream)

    def autograd_propagate() -> None:
        torch.autograd.grad(propagate(a, leaf), leaf, upstream)

    rows = [("torch.sparse.mm (CSR), forward", lambda: torch.sparse.mm(a, x)),
            ("scipy CSR @ ndarray, forward", lambda: scipy_a @ x_np),
            ("csr_matmul (embedding_bag), forward", lambda: csr_matmul(a, x)),
            ("torch.sparse.mm with autograd, forward + backward", autograd_sparse_mm),
            ("propagate, forward + backward", autograd_propagate)]
    print(f"Â: {n:,} x {n:,}, {a.values().numel():,} non-zeros ({source}); X: {n:,} x {args.dim}; "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, torch threads {torch.get_num_threads()}; "
          f"median of {args.repeats}\n")
    print("| product | ms |\n|---|---|")
    for label, fn in rows:
        print(f"| {label} | {best_of(fn, args.repeats) * 1e3:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
