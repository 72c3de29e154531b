"""The negative-sampling baselines of method.md §4: RNS, PNS, DNS, DNS(M,N), MixGCF, AHNS, DENS.

Shapes: user / pos ``[B, L+1, d]``, cand ``[B, M, L+1, d]``; ``ū``, ``p̄``, ``c̄`` are layer means.
Scores are inner products. Every argmax / argmin / top-N breaks ties by the lowest candidate index.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recbole_neggen.sampling.args import StrategyArgs, param
from recbole_neggen.sampling.base import (
    STRATEGIES,
    Distribution,
    Selection,
    Strategy,
    draw_index,
    draw_uniform,
    index_rows,
    pool_layers,
    row_dots,
)

AHNS_EPS = 1e-6
"""AHNS guard: the base ``s_pos + alpha`` is clamped to at least this value."""


def candidate_scores(user: Tensor, cand: Tensor) -> Tensor:
    """``⟨ū, c̄_m⟩``: user ``[B, L+1, d]``, cand ``[B, M, L+1, d]`` -> ``[B, M]``."""
    return row_dots(pool_layers(cand), pool_layers(user))


# --------------------------------------------------------------------------------------------- RNS / PNS
@dataclass(frozen=True)
class RNSArgs(StrategyArgs):
    """Uniform random negative: one candidate, taken as is."""

    n_candidates: int = param(1, int, low=1, high=1)


@STRATEGIES.register("rns")
class RNS(Strategy):
    """Random negative sampling: ``neg = cand[:, 0]`` (the loader draws uniformly)."""

    args_type = RNSArgs
    choice_input = "means"

    def _choose(self, user: Tensor, pos: Tensor, cand: Tensor, generator: torch.Generator | None) -> Selection:
        return Selection(index=torch.zeros(cand.shape[0], dtype=torch.long, device=cand.device))


@dataclass(frozen=True)
class PNSArgs(StrategyArgs):
    """Popularity negative: one candidate drawn with ``P(j) ∝ f_j^pop_alpha`` (train counts)."""

    n_candidates: int = param(1, int, low=1, high=1)
    pop_alpha: float = param(1.0, float, low=0.0)


@STRATEGIES.register("pns")
class PNS(RNS):
    """Popularity negative sampling: RNS's selection, popularity-weighted candidates."""

    args_type = PNSArgs
    args: PNSArgs

    @property
    def distribution(self) -> Distribution:
        return "popularity"

    @property
    def pop_alpha(self) -> float:
        return self.args.pop_alpha


# --------------------------------------------------------------------------------------------- DNS
@dataclass(frozen=True)
class DNSArgs(StrategyArgs):
    """Dynamic negative sampling (Zhang et al., SIGIR 2013)."""

    n_candidates: int = param(32, int, low=1)


@STRATEGIES.register("dns")
class DNS(Strategy):
    """Highest-scored candidate: ``j = argmax_m ⟨ū, c̄_m⟩``; index ``[B]``."""

    args_type = DNSArgs
    choice_input = "means"

    def _choose(self, user: Tensor, pos: Tensor, cand: Tensor, generator: torch.Generator | None) -> Selection:
        return Selection(index=candidate_scores(user, cand).argmax(dim=1))


@dataclass(frozen=True)
class DNSMNArgs(StrategyArgs):
    """DNS(M, N) (Shi et al., WWW 2023): uniform pick among the ``top_n`` best of ``n_candidates``."""

    n_candidates: int = param(32, int, low=1)
    top_n: int = param(4, int, low=1)

    def check_relations(self) -> None:
        if self.top_n > self.n_candidates:
            raise ValueError(f"top_n ({self.top_n}) must be <= n_candidates ({self.n_candidates})")


@STRATEGIES.register("dns_mn")
class DNSMN(Strategy):
    """``top = N best by ⟨ū, c̄⟩`` (stable: ties keep the lower index), ``j = top[randint(N)]``; index ``[B]``."""

    args_type = DNSMNArgs
    choice_input = "means"
    args: DNSMNArgs

    def _choose(self, user: Tensor, pos: Tensor, cand: Tensor, generator: torch.Generator | None) -> Selection:
        order = candidate_scores(user, cand).sort(dim=1, descending=True, stable=True).indices
        pick = draw_index(self.args.top_n, (cand.shape[0], 1), generator, cand)
        return Selection(index=order.gather(1, pick).squeeze(1))


# --------------------------------------------------------------------------------------------- MixGCF
@dataclass(frozen=True)
class MixGCFArgs(StrategyArgs):
    """MixGCF (Huang et al., KDD 2021); 16 candidates is the official Amazon setting."""

    n_candidates: int = param(16, int, low=1)


@STRATEGIES.register("mixgcf")
class MixGCF(Strategy):
    """Positive mixing then hop mixing; the negative is synthetic, index ``[B, L+1]``.

    ``a ~ U(0,1)`` of shape ``[B, 1, L+1]``; ``mix = a·p + (1−a)·c`` ``[B, M, L+1, d]``;
    ``idx[b, l] = argmax_m ⟨ū_b, mix[b, m, l]⟩``; ``neg[b, l] = mix[b, idx[b, l], l]``.
    Gradients flow through the mixture into ``pos`` and the chosen candidates.
    """

    args_type = MixGCFArgs
    choice_input = "layers"

    def _choice_rows(self, user: Tensor, pos: Tensor, generator: torch.Generator | None) -> dict[str, Tensor]:
        """The mixing weights ``a [B, 1, L+1]``, ``ū [B, d]`` and the positive's part ``a⟨ū, p⟩ [B, 1, L+1]``."""
        b, l1 = pos.shape[:2]
        weight = draw_uniform((b, 1, l1), generator, pos)
        user_bar = pool_layers(user)
        return {"weight": weight, "user_bar": user_bar, "pos_part": weight * row_dots(pos, user_bar).view(b, 1, l1)}

    def _choose(self, user: Tensor, pos: Tensor, cand: Tensor, generator: torch.Generator | None, weight: Tensor,
                user_bar: Tensor, pos_part: Tensor) -> Selection:
        # ⟨ū, a·p + (1−a)·c⟩ = a⟨ū, p⟩ + (1−a)⟨ū, c⟩: the [B, M, L+1, d] mixture is never materialised.
        b, m, l1, d = cand.shape
        s_cand = row_dots(cand.reshape(b, m * l1, d), user_bar).view(b, m, l1)  # [B, M, L+1]
        index = ((1 - weight) * s_cand + pos_part).argmax(dim=1)  # [B, L+1]
        return Selection(index=index, mix=weight.view(b, l1, 1))

    def negative(self, selection: Selection, pos: Tensor, chosen: Tensor, **extra: Tensor) -> Tensor:
        """``a·p + (1−a)·c`` per layer with the drawn weights ``a = selection.mix``."""
        return selection.mix * pos + (1 - selection.mix) * chosen


# --------------------------------------------------------------------------------------------- AHNS
@dataclass(frozen=True)
class AHNSArgs(StrategyArgs):
    """AHNS (Lai et al., AAAI 2024) defaults from the official code.

    ``p`` is limited to [-10, 10] so that ``beta * max(s_pos + alpha, eps)^(p+1)`` stays finite in float64.
    """

    n_candidates: int = param(32, int, low=1)
    alpha: float = param(1.0, float)
    beta: float = param(0.1, float, low=0.0)
    p: float = param(-2.0, float, low=-10.0, high=10.0)


@STRATEGIES.register("ahns")
class AHNS(Strategy):
    """Candidate whose score is closest to a target that falls as the positive score rises; index ``[B]``.

    ``t = beta * max(s⁺ + alpha, eps)^(p+1)``, ``j = argmin_m |⟨ū, c̄_m⟩ − t|`` (``t`` and ``|·|`` in float64).
    Rows with ``s⁺ + alpha < eps`` are clamped (their target is huge for p < −1: DNS-like) and counted.
    """

    args_type = AHNSArgs
    choice_input = "means"
    args: AHNSArgs

    def _choose(self, user: Tensor, pos: Tensor, cand: Tensor, generator: torch.Generator | None) -> Selection:
        index, clamped = ahns_index(user, pos, cand, self.args)
        return Selection(index=index, clamped=clamped)


def ahns_index(user: Tensor, pos: Tensor, cand: Tensor, args: AHNSArgs) -> tuple[Tensor, int]:
    """AHNS's choice (see :class:`AHNS`): index ``[B]`` and the number of clamped rows; no gradient."""
    with torch.no_grad():
        # Scores in the input precision; the target and distances in float64 so that a large target
        # (small base) still separates candidates whose scores differ.
        s_pos = (pool_layers(user) * pool_layers(pos)).sum(-1, keepdim=True).double()  # [B, 1]
        scores = candidate_scores(user, cand).double()  # [B, M]
        base = s_pos + args.alpha
        low = ~(base >= AHNS_EPS)  # also catches NaN
        target = args.beta * torch.where(low, torch.full_like(base, AHNS_EPS), base).pow(args.p + 1)
        return (scores - target).abs().argmin(dim=1), int(low.sum())


# --------------------------------------------------------------------------------------------- DENS
@dataclass(frozen=True)
class DENSArgs(StrategyArgs):
    """DENS (Lai et al., WSDM 2023). ``dens_alpha`` weights the raw candidate in the selection score
    (official code default 1.0, shared there with AHNS's alpha); ``gamma`` weights the gating loss."""

    n_candidates: int = param(32, int, low=1)
    dens_alpha: float = param(1.0, float, low=0.0, high=1.0)
    gamma: float = param(0.5, float, low=0.0)


@STRATEGIES.register("dens")
class DENS(Strategy):
    """Disentangled negatives with learned ``d×d`` gates; index ``[B, L+1]``, returns ``aux_loss``.

    ``g_p = σ(W_i p + W_u u)``, ``r_p = p⊙g_p``; ``g_c = σ(W_n c + W_p r_p)``, ``r_c = c⊙g_c``;
    ``idx[b, l] = argmax_m ⟨u_bl, (1−a)c_bml − r_c,bml⟩``; ``neg[b, l] = c[b, idx[b, l], l]``;
    ``aux_loss = gamma/4 · mean_B[sp(S(ir_p)−S(r_p)) + sp(S(r_n)−S(ir_n))``
    ``                          + sp(S(r_n)−S(r_p)) + sp(S(ir_p)−S(ir_n))]`` (sp = softplus)
    with ``S(x) = ⟨ū, mean_l x⟩``, ``ir = x − r`` and the negative's gates recomputed with gradient.
    """

    args_type = DENSArgs
    choice_input = "layers"
    args: DENSArgs

    def __init__(self, args: DENSArgs, embedding_size: int) -> None:
        super().__init__(args, embedding_size)
        d = embedding_size
        self.item_gate = nn.Linear(d, d)  # W_i
        self.user_gate = nn.Linear(d, d)  # W_u
        self.neg_gate = nn.Linear(d, d)  # W_n
        self.pos_gate = nn.Linear(d, d)  # W_p

    def _relevant_pos(self, user: Tensor, pos: Tensor) -> Tensor:
        """``r_p = p⊙σ(W_i p + W_u u)`` ``[B, L+1, d]``."""
        return pos * torch.sigmoid(self.item_gate(pos) + self.user_gate(user))

    def _choice_rows(self, user: Tensor, pos: Tensor, generator: torch.Generator | None) -> dict[str, Tensor]:
        """The positive's gate input ``W_p r_p`` ``[B, L+1, d]``, once per batch."""
        return {"pos_term": self.pos_gate(self._relevant_pos(user, pos))}

    def _choose(self, user: Tensor, pos: Tensor, cand: Tensor, generator: torch.Generator | None,
                pos_term: Tensor) -> Selection:
        return Selection(index=self._index(user, cand, self.neg_gate(cand), pos_term))

    def _choice_table(self, table: Tensor) -> tuple[Tensor, Tensor]:
        """The items and their gate pre-activations ``W_n c`` ``[n_items, L+1, d]``: one ``d×d`` product per
        item and layer instead of one per candidate (a batch draws each item many times)."""
        return table, self.neg_gate(table)

    def _choose_rows(self, user: Tensor, pos: Tensor, prepared: tuple[Tensor, Tensor], ids: Tensor,
                     generator: torch.Generator | None, extra: dict[str, Tensor]) -> Selection:
        table, gate = prepared
        cand = index_rows(table, ids)
        self._check_shapes(user, pos, cand)
        return Selection(index=self._index(user, cand, index_rows(gate, ids), extra["pos_term"]))

    def _index(self, user: Tensor, cand: Tensor, cand_gate: Tensor, pos_term: Tensor) -> Tensor:
        """``idx [B, L+1]`` of the class docstring from the candidates, their ``W_n c`` ``[B, M, L+1, d]``
        (overwritten in place) and ``W_p r_p`` ``[B, L+1, d]``. The score is ``⟨u, (1−a)c − c⊙g_c⟩ =
        −⟨u⊙c, g_c − (1−a)⟩``, so the hardest candidate is the first minimiser of ``⟨u⊙c, g_c − (1−a)⟩``
        (same ties, fewer passes)."""
        gate = cand_gate.add_(pos_term.unsqueeze(1)).sigmoid_()  # g_c
        if self.args.dens_alpha != 1.0:
            gate.sub_(1.0 - self.args.dens_alpha)
        return gate.mul_(cand).mul_(user.unsqueeze(1)).sum(-1).argmin(dim=1)

    def aux_loss(self, user: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
        """The gating loss of the class docstring on the chosen negative ``neg [B, L+1, d]`` (with gradient)."""
        rel_pos = self._relevant_pos(user, pos)
        rel_neg = neg * torch.sigmoid(self.neg_gate(neg) + self.pos_gate(rel_pos))  # r_n
        user_bar = pool_layers(user)

        def score(x: Tensor) -> Tensor:
            return (user_bar * pool_layers(x)).sum(-1)

        s_rp, s_irp = score(rel_pos), score(pos - rel_pos)
        s_rn, s_irn = score(rel_neg), score(neg - rel_neg)
        aux = (
            F.softplus(s_irp - s_rp) + F.softplus(s_rn - s_irn) + F.softplus(s_rn - s_rp) + F.softplus(s_irp - s_irn)
        ).mean() / 4
        return self.args.gamma * aux
