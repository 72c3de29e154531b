"""NegGen's hardness-aware choice between a generated negative and the hardest real candidate."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from recbole_neggen.sampling.args import param
from recbole_neggen.sampling.base import STRATEGIES, Selection, Strategy, take_rows
from recbole_neggen.sampling.strategies import AHNSArgs, ahns_index, candidate_scores


@dataclass(frozen=True)
class NegGenArgs(AHNSArgs):
    """n_candidates: real candidates M drawn by the loader; gen_ratio: probability that a row with a
    generated negative is served it instead of its real choice; real: how the real candidate is chosen,
    ``dns`` (hardest) or ``ahns`` (adaptive hardness, with AHNS's alpha / beta / p)."""

    gen_ratio: float = param(0.1, float, low=0.0, high=1.0)
    real: str = param("dns", str, choices=("dns", "ahns"))


@STRATEGIES.register("neggen")
class NegGen(Strategy):
    """Per row: the real candidate chosen by ``real`` (``dns``: argmax ⟨ū, c̄_m⟩ over M, ties to the lowest
    index; ``ahns``: AHNS's adaptive target), replaced by the row's generated negative with probability
    ``gen_ratio`` where one exists.

    ``gen`` ``[B, L+1, d]`` is the (already hardness- and modality-chosen) generated negative of each row and
    ``gen_mask`` ``[B]`` says which rows have one. Index ``M`` in :attr:`Selection.index` marks a generated
    choice. Without ``gen`` it is exactly DNS (or AHNS).
    """

    args_type = NegGenArgs
    choice_input = "means"

    def _select(self, user: Tensor, pos: Tensor, cand: Tensor, generator: torch.Generator | None,
                gen: Tensor | None = None, gen_mask: Tensor | None = None) -> Selection:
        clamped = 0
        if self.args.real == "ahns":
            index, clamped = ahns_index(user, pos, cand, self.args)
        else:
            with torch.no_grad():
                index = candidate_scores(user, cand).argmax(dim=1)  # [B]
        neg = take_rows(cand, index)
        if gen is None:
            return Selection(neg=neg, index=index, clamped=clamped)
        if gen.shape != user.shape or gen_mask is None or gen_mask.shape != user.shape[:1]:
            raise ValueError(f"gen must be {list(user.shape)} with gen_mask [{user.shape[0]}], "
                             f"got {list(gen.shape)} and {None if gen_mask is None else list(gen_mask.shape)}")
        draw = torch.rand(user.shape[0], generator=generator).to(user.device)  # CPU generator, any device
        use_gen = gen_mask & (draw < self.args.gen_ratio)  # [B]
        neg = torch.where(use_gen[:, None, None], gen, neg)
        index = torch.where(use_gen, torch.full_like(index, cand.shape[1]), index)
        return Selection(neg=neg, index=index, clamped=clamped)
