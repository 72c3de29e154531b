r"""Negative-sample diagnostics: how hard, how often false, how diverse, how popular the chosen negatives
are, and how much gradient they carry, measured after every training epoch (``neg_diagnostics: true``).

Training is never touched: :class:`NegativeDiagnostics` runs a separate pass on a FIXED random subset of
``neg_diagnostics_rows`` training rows (drawn once, seeded by ``seed``) with candidates drawn once by the
training loader's own sampler. Each epoch it runs the model's own ``calculate_loss`` on that subset with a
freshly seeded selection generator (so every epoch sees the same draws and only the parameters change),
captures what the strategy chose, and restores the model's generator, epoch statistics and the global RNG.

Measures (B subset rows, ū the user's layer mean, n̄ / p̄ the chosen negative / positive layer means):
    percentile            mean_b fraction of the user's admissible items j (not [PAD], not a training item of
                          the user) with ⟨ū, ī_j⟩ <= ⟨ū, n̄_b⟩; 1.0 = the negative scores as high as the
                          top-scored admissible item (works for synthetic negatives: MixGCF, generated)
    score_gap             mean_b ⟨ū, p̄_b⟩ − ⟨ū, n̄_b⟩
    false_negative_share  share of chosen negative items that are the user's VALIDATION positives
    diversity             distinct chosen negative items / chosen negative items
    popularity_gap        mean log(1 + f_j) of chosen items − the same for uniform draws (f_j = train count)
    grad_norm_neg         mean_b ‖∂L_b/∂n_b‖ (= B·‖∂L/∂n_b‖, L the model's own mean loss on the subset)
    grad_share_neg        Σ_b ‖∂L/∂n_b‖ / Σ_b (‖∂L/∂n_b‖ + ‖∂L/∂p_b‖)  (0.5 for plain BPR without L2)
Item-based measures use the chosen item ids: for layer-wise choices (MixGCF, DENS) every layer's item counts
once, and generated negatives (NegGen) are left out. NegGen adds, per variant type t (text / visual / both)
over the subset positives' variants: ``gen_cos_t`` cos(h̄_i, ḡ_{i,k}), ``gen_changes_t`` intervened
attributes per variant, ``gen_loss_t`` mean softplus(⟨ū, ḡ_{i,k}⟩ − ⟨ū, h̄_i⟩); and ``gen_served_share``,
the share of rows served a generated negative. Undefined values are NaN.
"""
from __future__ import annotations

import csv
import logging
import math
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
import torch.nn.functional as F
from recbole.data.interaction import Interaction
from torch import Tensor

from recbole_neggen.data.dataloader import NEG_CAND
from recbole_neggen.generation.templates import TAGS
from recbole_neggen.sampling import CandidateSampler, Selection, pool_layers

logger = logging.getLogger(__name__)

DIAGNOSTICS_FILE = "diagnostics.csv"
REFERENCE_DRAWS = 8
"""Uniform reference draws per subset row for :func:`popularity_gap`."""
_SCORE_CELLS = 1 << 22
"""Rows × items scored at once when computing percentiles (bounds memory on large catalogues)."""

MEASURES: dict[str, str] = {
    "percentile": "score percentile of the chosen negative (1 = top item)",
    "score_gap": "score gap s+ - s-",
    "false_negative_share": "share of negatives that are validation positives",
    "diversity": "distinct negatives / negatives drawn",
    "popularity_gap": "mean log(1+train count): chosen - uniform",
    "grad_norm_neg": "per-row gradient norm through the negative",
    "grad_share_neg": "gradient share of the negative (vs positive)",
    "gen_served_share": "share of rows served a generated negative",
    **{f"gen_cos_{t}": f"cosine(positive, generated {t} variant)" for t in TAGS},
    **{f"gen_changes_{t}": f"intervened attributes per {t} variant" for t in TAGS},
    **{f"gen_loss_{t}": f"BPR loss against generated {t} variants" for t in TAGS},
}
"""Every column :meth:`NegativeDiagnostics.measure` can report, with the label its plot uses."""


# ------------------------------------------------------------------------------------------ pure measures
def score_percentile(item_scores: Tensor, neg_scores: Tensor, admissible: Tensor) -> Tensor:
    """Fraction of admissible items scored at most the negative's score, per row.

    item_scores: ``[B, N]`` score of every item for the row's user; neg_scores: ``[B]``; admissible:
    ``[B, N]`` bool (items that count; at least one per row). Returns ``[B]`` in ``[0, 1]``.
    """
    if item_scores.shape != admissible.shape or neg_scores.shape != item_scores.shape[:1]:
        raise ValueError(f"item_scores {list(item_scores.shape)}, admissible {list(admissible.shape)} and "
                         f"neg_scores {list(neg_scores.shape)} must be [B, N], [B, N], [B]")
    below = ((item_scores <= neg_scores.unsqueeze(1)) & admissible).sum(1)
    return below.double() / admissible.sum(1).clamp(min=1).double()


def false_negatives(users: Tensor, items: Tensor, valid_keys: Tensor, n_items: int) -> Tensor:
    """Whether each ``(users[k], items[k])`` is a validation interaction: ``[R]`` bool.

    valid_keys: ``[V]`` the validation pairs encoded as ``user * n_items + item``.
    """
    return torch.isin(users * n_items + items, valid_keys)


def diversity(items: Tensor) -> float:
    """Distinct ids over ids: ``items [R]`` -> ``|set(items)| / R`` (NaN when empty)."""
    return items.unique().numel() / items.numel() if items.numel() else math.nan


def popularity_gap(chosen: Tensor, reference: Tensor, item_counts: Tensor) -> float:
    """``mean log(1 + f[chosen]) − mean log(1 + f[reference])``; chosen ``[R]``, reference ``[R']``,
    item_counts ``[N]`` (training interactions per item). NaN when ``chosen`` is empty."""
    if chosen.numel() == 0:
        return math.nan
    log_pop = torch.log1p(item_counts.double())
    return float(log_pop[chosen].mean() - log_pop[reference].mean())


def gradient_norms(loss: Tensor, neg: Tensor, pos: Tensor) -> tuple[Tensor, Tensor]:
    """Per-row norms ``[B]`` of ``∂loss/∂neg`` and ``∂loss/∂pos`` (``neg``, ``pos`` ``[B, ...]`` tensors
    in ``loss``'s graph; a tensor the loss does not depend on gets zeros). Frees the graph."""
    grads = torch.autograd.grad(loss, [neg, pos], allow_unused=True)
    return tuple(  # type: ignore[return-value]
        torch.zeros(x.shape[0], device=x.device) if g is None else g.detach().flatten(1).norm(dim=1)
        for g, x in zip(grads, (neg, pos)))


def cosine_to_variants(item: Tensor, variants: Tensor) -> Tensor:
    """``item [B, d]``, ``variants [B, K, d]`` -> cosine of each variant with its item ``[B, K]``."""
    return F.cosine_similarity(item.unsqueeze(1), variants, dim=-1)


def per_type_mean(values: Tensor, mask: Tensor, types: Tensor) -> dict[str, float]:
    """Mean of ``values [B, K]`` over cells where ``mask [B, K]`` holds, per variant type
    (``types [B, K]`` indexes :data:`TAGS`); NaN for a type without cells."""
    out = {}
    for t, name in enumerate(TAGS):
        cells = mask & (types == t)
        out[name] = float(values[cells].double().mean()) if cells.any() else math.nan
    return out


# ------------------------------------------------------------------------------------------ the pass
class NegativeDiagnostics:
    """Per-epoch negative diagnostics for an ``NSRec`` / ``NegGen`` model (module docstring).

    config: reads ``neg_diagnostics_rows`` (default 2048), ``seed`` and ``run_dir`` / ``checkpoint_dir``.
    train_data: the ``CandidateTrainLoader`` (its ``candidates`` sampler, ``n_candidates``, dataset).
    valid_dataset: the validation split (false negatives); the test split is never read.
    """

    def __init__(self, config: Any, train_data: Any, valid_dataset: Any) -> None:
        rows = config["neg_diagnostics_rows"]
        rows = 2048 if rows is None else rows
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
            raise ValueError(f"neg_diagnostics_rows must be an int >= 1, got {rows!r}")
        self.seed = int(config["seed"])
        self.csv_path = Path(config["run_dir"] or config["checkpoint_dir"]) / DIAGNOSTICS_FILE
        dataset = train_data._dataset
        self.uid, self.iid = dataset.uid_field, dataset.iid_field
        self.sampler: CandidateSampler = train_data.candidates
        self.n_items = self.sampler.n_items
        generator = torch.Generator().manual_seed(self.seed)
        picked = torch.randperm(len(dataset), generator=generator)[:rows].sort().values
        self.batch = dataset[picked.numpy()]
        users = self.batch[self.uid].long()
        self.batch.update(Interaction({NEG_CAND: self.sampler.sample(users, train_data.n_candidates, generator)}))
        uniform = self.sampler if self.sampler.distribution == "uniform" else CandidateSampler(
            self.sampler.indptr, self.sampler.indices, self.n_items, "uniform", pool=self.sampler.pool)
        self.reference = uniform.sample(users, REFERENCE_DRAWS, generator).flatten()  # [B * draws]
        self.admissible = self._admissible(users)  # [B, n_items]
        valid_users = torch.as_tensor(valid_dataset.inter_feat[valid_dataset.uid_field]).long()
        valid_items = torch.as_tensor(valid_dataset.inter_feat[valid_dataset.iid_field]).long()
        self.valid_keys = torch.unique(valid_users * self.n_items + valid_items)
        self.history: list[dict[str, float]] = []
        self.seconds: list[float] = []

    def _admissible(self, users: Tensor) -> Tensor:
        """``[B, n_items]`` bool: items that count in the percentile (not [PAD], not the user's training items)."""
        items = torch.arange(self.n_items)
        chunk = max(1, _SCORE_CELLS // self.n_items)
        parts = [~self.sampler.is_positive(part.repeat_interleave(self.n_items), items.repeat(len(part)))
                 .view(len(part), self.n_items) for part in users.split(chunk)]
        admissible = torch.cat(parts)
        admissible[:, 0] = False
        return admissible

    # -------------------------------------------------------------- measuring
    def measure(self, model: Any) -> dict[str, float]:
        """All measures of the module docstring for ``model`` under its current parameters (the same
        rows, candidates and selection randomness every call)."""
        device = next(model.parameters()).device
        batch = self.batch.to(device)
        with _isolated(model, self.seed, device), torch.enable_grad():
            loss = model.calculate_loss(batch)
            terms = model.last_terms
            selection: Selection = terms.selection
            grad_neg, grad_pos = gradient_norms(loss, selection.neg, terms.pos)
            with torch.no_grad():
                _, items_pooled = model.pooled()
        user, pos, neg = (pool_layers(x).detach() for x in (terms.user, terms.pos, selection.neg))
        s_pos, s_neg = (user * pos).sum(-1), (user * neg).sum(-1)
        users, cand_ids = batch[self.uid].long(), batch[NEG_CAND]
        out = {
            "percentile": float(self._percentiles(user, items_pooled.detach(), s_neg).mean()),
            "score_gap": float((s_pos - s_neg).mean()),
            "grad_norm_neg": float(grad_neg.mean() * len(grad_neg)),
            "grad_share_neg": float(grad_neg.sum() / (grad_neg.sum() + grad_pos.sum()).clamp(min=1e-30)),
        }
        out.update(self._item_measures(users.cpu(), selection, cand_ids))
        if hasattr(model, "gen_mask"):
            out.update(self._generated_measures(model, batch[self.iid].long(), user, pos, selection))
        return out

    def _percentiles(self, user: Tensor, items: Tensor, s_neg: Tensor) -> Tensor:
        chunk = max(1, _SCORE_CELLS // self.n_items)
        return torch.cat([
            score_percentile(u @ items.T, s, a.to(u.device))
            for u, s, a in zip(user.split(chunk), s_neg.split(chunk), self.admissible.split(chunk))])

    def _item_measures(self, users: Tensor, selection: Selection, cand_ids: Tensor) -> dict[str, float]:
        chosen = selection.item_ids(cand_ids).cpu()  # [B] or [B, L+1]
        chosen_users = users.unsqueeze(1).expand_as(chosen) if chosen.dim() == 2 else users
        if selection.generated is not None:  # rows served a generated negative have no real item
            real = ~selection.generated.cpu()
            chosen, chosen_users = chosen[real], chosen_users[real]
        fn = false_negatives(chosen_users, chosen, self.valid_keys, self.n_items)
        return {
            "false_negative_share": float(fn.double().mean()) if fn.numel() else math.nan,
            "diversity": diversity(chosen),
            "popularity_gap": popularity_gap(chosen, self.reference, self.sampler.item_counts),
        }

    def _generated_measures(self, model: Any, pos_ids: Tensor, user: Tensor, pos: Tensor,
                            selection: Selection) -> dict[str, float]:
        """NegGen: h̄ = p̄ (item + its item term), ḡ_k = p̄ − item term + offset_k (``model._terms``)."""
        with torch.no_grad():
            items, row_item = pos_ids.unique(return_inverse=True)
            term, offsets = (x[row_item] for x in model._terms(items))  # [B, d], [B, K, d]
            gen = (pos - term).unsqueeze(1) + offsets  # ḡ [B, K, d]
            mask, types = model.gen_mask[pos_ids], model.gen_type[pos_ids]
            loss = F.softplus((user.unsqueeze(1) * gen).sum(-1) - (user * pos).sum(-1, keepdim=True))
            values = {"cos": cosine_to_variants(pos, gen), "changes": model.n_changes[pos_ids], "loss": loss}
        served = 0.0 if selection.generated is None else float(selection.generated.double().mean())
        out = {"gen_served_share": served}
        for name, value in values.items():
            out.update({f"gen_{name}_{t}": v for t, v in per_type_mean(value, mask, types).items()})
        return out

    # -------------------------------------------------------------- recording
    def record(self, model: Any, epoch: int) -> dict[str, float]:
        """:meth:`measure`, then append the row to ``<run_dir>/diagnostics.csv`` and :attr:`history`."""
        start = time.perf_counter()
        row = {"epoch": float(epoch), **self.measure(model)}
        self.seconds.append(time.perf_counter() - start)
        new = not self.csv_path.is_file()
        with self.csv_path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
        self.history.append(row)
        logger.info("epoch %d negative diagnostics: %s", epoch,
                    ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "epoch"))
        return row

    def summary(self, best_epoch: int | None) -> dict[str, Any]:
        """For ``result.json``: the CSV path, subset size, mean seconds per measurement pass, and the
        measures at the best-valid and the last epoch (NaN written as ``None``)."""
        by_epoch = {int(r["epoch"]): r for r in self.history}

        def plain(row: dict[str, float] | None) -> dict[str, float | None] | None:
            return None if row is None else {k: (None if math.isnan(v) else v) for k, v in row.items()}

        return {"csv": str(self.csv_path), "rows": len(self.batch),
                "seconds_per_epoch": sum(self.seconds) / len(self.seconds) if self.seconds else None,
                "best_epoch": plain(by_epoch.get(best_epoch) if best_epoch is not None else None),
                "last_epoch": plain(self.history[-1] if self.history else None)}


@contextmanager
def _isolated(model: Any, seed: int, device: torch.device) -> Iterator[None]:
    """Run with a fresh selection generator seeded ``seed`` and no epoch statistics, then restore both and
    the global RNG state, so the measurement pass leaves training exactly as it was."""
    saved_generator, saved_stats = model.generator, model._epoch_stats
    model.generator = torch.Generator(device=saved_generator.device).manual_seed(seed)
    model._epoch_stats = {}
    devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        model.generator, model._epoch_stats = saved_generator, saved_stats


# ------------------------------------------------------------------------------------------ reading, plots
def read_diagnostics(path: str | Path) -> list[dict[str, float]]:
    """Rows of a ``diagnostics.csv`` as floats (empty cells read as NaN)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no diagnostics file at {path}")
    rows = []
    with path.open(newline="") as handle:
        for line, raw in enumerate(csv.DictReader(handle), start=2):
            try:
                rows.append({k: float(v) if v not in ("", None) else math.nan for k, v in raw.items()})
            except ValueError as err:
                raise ValueError(f"{path}:{line}: not a number ({err})") from None
    return rows


def plot_diagnostics(csv_paths_by_label: Mapping[str, str | Path], out_dir: str | Path) -> list[Path]:
    """One PNG per measure (``<out_dir>/diagnostics_<measure>.png``): the measure per epoch, one line per
    label (e.g. strategy). Measures that no run defines are skipped. Returns the written paths."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    runs = {label: read_diagnostics(path) for label, path in csv_paths_by_label.items()}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    columns = [c for c in MEASURES if any(c in row for rows in runs.values() for row in rows)]
    columns += sorted({c for rows in runs.values() for row in rows for c in row} - set(columns) - {"epoch"})
    written = []
    for column in columns:
        fig = Figure(figsize=(6, 4), layout="constrained")
        ax = fig.subplots()
        drawn = False
        for label, rows in runs.items():
            points = [(r["epoch"], r[column]) for r in rows if not math.isnan(r.get(column, math.nan))]
            if points:
                epochs, values = zip(*points)
                ax.plot(epochs, values, marker="o", markersize=3, label=label)
                drawn = True
        if not drawn:
            continue
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(column)
        ax.set_title(MEASURES.get(column, column))
        ax.legend()
        path = out / f"diagnostics_{column}.png"
        fig.savefig(path, dpi=100)
        written.append(path)
    return written


__all__ = [
    "DIAGNOSTICS_FILE",
    "MEASURES",
    "NegativeDiagnostics",
    "cosine_to_variants",
    "diversity",
    "false_negatives",
    "gradient_norms",
    "per_type_mean",
    "plot_diagnostics",
    "popularity_gap",
    "read_diagnostics",
    "score_percentile",
]
