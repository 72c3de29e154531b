"""Lower bounds on DENS's and NegGen's epoch ratios to the uniform epoch (default Baby, LightGCN 2 layers, C = 32):
the work each method's exact definition cannot skip, timed on the models' own tensors. Prints one table.

    OMP_NUM_THREADS=1 NEGGEN_DATA_PATH=../shared/data python benchmarks/bench_floors.py [--rounds 3] [--batches 8]

- DENS: its choice reads every candidate's item rows and gate pre-activations ``W_n c`` (one ``d×d`` product per
  item and layer) and evaluates the sigmoid gate on all of them (``[B, M, L+1, d]`` values, in the model's row
  blocks); its gating loss runs forward and backward. Not counted: the rest of the choice (adding the row term,
  the products and sums of the score, the argmin) and the positive's gates, which the choice computes apart
  from the loss.
- NegGen: its real choice (the DNS row's whole epoch, the cheaper of DNS and AHNS) plus, per batch, the causal
  module's two matrix products (``½[W_t W_v] Δ`` over K variants, then ``P``'s ``d×d`` layer) forward and
  backward, for the batch's distinct positives and distinct chosen real negatives; not its norms, means,
  gathers, generated choice, InfoNCE or anything else.
Epoch times are medians over ``--rounds`` interleaved rounds; the per-batch floors are medians over ``--batches``
training batches, times the number of batches per epoch.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_hotpaths import build, common_settings, interleaved_epochs  # noqa: E402
from bench_sampling import best_of  # noqa: E402

from recbole_neggen.data.dataloader import NEG_CAND  # noqa: E402
from recbole_neggen.sampling.base import choice_block_rows, index_rows  # noqa: E402


def dens_floor(model, batch) -> float:
    """Seconds for one batch of DENS's unavoidable work (module docstring)."""
    strategy = model.strategy
    with torch.no_grad():
        users_all, table = model.backbone.layer_embeddings()
    ids = batch[NEG_CAND]
    rows = choice_block_rows(table, ids)
    user, pos, neg = (index_rows(x, i).requires_grad_() for x, i in (
        (users_all, batch[model.USER_ID]), (table, batch[model.ITEM_ID]), (table, ids[:, 0])))

    def work() -> None:
        with torch.no_grad():
            gate = strategy.neg_gate(table)
            for s in range(0, len(ids), rows):
                index_rows(table, ids[s:s + rows])
                index_rows(gate, ids[s:s + rows]).sigmoid_()
        strategy.aux_loss(user, pos, neg).backward()

    seconds = best_of(work, 5)
    model.zero_grad(set_to_none=True)
    return seconds


def neggen_floor(model, batch) -> float:
    """Seconds for one batch of the causal module's two products, forward and backward, on the distinct
    positives and the distinct chosen real negatives of ``batch``."""
    model.calculate_loss(batch)
    chosen = model.last_terms.selection.item_ids(batch[NEG_CAND])
    sizes = [len(batch[model.ITEM_ID].unique()), len(chosen.unique())]
    deltas = [model.delta[: n] for n in sizes]  # [N, K, 2r]: the product's cost depends on N only

    def work() -> None:
        for delta in deltas:
            model.projector.out(model.encoder.feature_difference(delta)).sum().backward()

    seconds = best_of(work, 5)
    model.zero_grad(set_to_none=True)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="baby")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--neggen-encoder", default="minilm")
    args = parser.parse_args()
    common = {**common_settings("cpu", args.neggen_encoder), "n_layers": 2}
    rows = {"rns": ("NSRec", {}), "dns": ("NSRec", {"n_candidates": 32}), "dens": ("NSRec", {"n_candidates": 32}),
            "neggen": ("NegGen", {"n_candidates": 32})}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.chdir(work)
        built = {}
        for name, (model, params) in rows.items():
            _, trainer, train, _, _ = build(model, args.dataset, {**common, "neg_strategy": name, "neg_params": params}, work)
            built[name] = (trainer, train)
        epochs = interleaved_epochs(built, args.rounds)
        floors = {}
        for name, fn in (("dens", dens_floor), ("neggen", neggen_floor)):
            trainer, train = built[name]
            trainer.model.train()
            per_batch = [fn(trainer.model, batch) for _, batch in zip(range(args.batches), train)]
            floors[name] = statistics.median(per_batch) * len(train)
    epoch = {name: statistics.median(values) for name, values in epochs.items()}
    uniform = epoch["rns"]
    print(f"\nOMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, torch threads {torch.get_num_threads()}, "
          f"dataset {args.dataset}, LightGCN 2 layers, C = 32, {args.rounds} interleaved rounds, "
          f"{len(built['rns'][1])} batches per epoch\n")
    print("| | seconds per epoch | ratio to uniform | target |\n|---|---|---|---|")
    print(f"| uniform (rns) epoch | {uniform:.3f} | 1.00x | |")
    print(f"| dns epoch | {epoch['dns']:.3f} | {epoch['dns'] / uniform:.2f}x | |")
    print(f"| dens epoch, measured | {epoch['dens']:.3f} | {epoch['dens'] / uniform:.2f}x | ≤ 1.5x |")
    print(f"| dens floor: uniform epoch + its choice's gathers, gate products and sigmoid + its gating loss | {uniform + floors['dens']:.3f} | "
          f"{(uniform + floors['dens']) / uniform:.2f}x | |")
    print(f"| NegGen epoch, measured | {epoch['neggen']:.3f} | {epoch['neggen'] / uniform:.2f}x | ≤ 1.3x |")
    print(f"| NegGen floor: dns epoch + causal products, forward and backward | {epoch['dns'] + floors['neggen']:.3f} | "
          f"{(epoch['dns'] + floors['neggen']) / uniform:.2f}x | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
