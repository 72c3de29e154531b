"""NegGen's hardness-aware choice between a generated negative and the hardest real candidate."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from recbole_neggen.sampling.args import param
from recbole_neggen.sampling.base import STRATEGIES, Selection, Strategy
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

    ``gen_mask`` ``[B]`` (a choice input) says which rows have a generated negative; ``gen`` ``[B, L+1, d]``
    (an input of :meth:`negative`) is that negative, already hardness- and modality-chosen.
    :attr:`Selection.generated` marks the rows served it; ``index`` stays their real choice. Without
    ``gen_mask`` it is exactly DNS (or AHNS).
    """

    args_type = NegGenArgs
    choice_input = "means"

    def _choose(self, user: Tensor, pos: Tensor, cand: Tensor, generator: torch.Generator | None,
                gen_mask: Tensor | None = None, gen: Tensor | None = None) -> Selection:
        clamped = 0
        if self.args.real == "ahns":
            index, clamped = ahns_index(user, pos, cand, self.args)
        else:
            index = candidate_scores(user, cand).argmax(dim=1)  # [B]
        if gen_mask is None:
            return Selection(index=index, clamped=clamped)
        if gen_mask.shape != index.shape:
            raise ValueError(f"gen_mask must be [{len(index)}], got {list(gen_mask.shape)}")
        draw = torch.rand(len(index), generator=generator).to(index.device)  # CPU generator, any device
        return Selection(index=index, clamped=clamped, generated=gen_mask & (draw < self.args.gen_ratio))

    def negative(self, selection: Selection, pos: Tensor, chosen: Tensor, gen: Tensor | None = None,
                 gen_mask: Tensor | None = None) -> Tensor:
        """The chosen real rows, with ``gen`` ``[B, L+1, d]`` on the rows marked ``selection.generated``."""
        if selection.generated is None:
            return chosen
        if gen is None or gen.shape != chosen.shape:
            raise ValueError(f"gen must be {list(chosen.shape)}, got {None if gen is None else list(gen.shape)}")
        return torch.where(selection.generated.view(-1, 1, 1), gen, chosen)
