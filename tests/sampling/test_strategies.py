"""Every strategy against a brute-force per-row loop, plus one shared behavioural contract.

The brute-force references work in exact rational arithmetic (``fractions.Fraction``) where the method is
rational, so "ties -> lowest index" is checked against exact ties; inputs come in two kinds: dyadic values
(multiples of 1/4, many exact ties, exactly representable sums) and float64 normals.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, ClassVar

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from recbole_neggen.sampling import (
    AHNS_EPS,
    STRATEGIES,
    CandidateSampler,
    Selection,
    Strategy,
    build_strategy,
    take_layerwise,
    take_rows,
)

L1, D = 4, 8  # layers (a power of two keeps layer means exact for dyadic inputs) and embedding size


# ----------------------------------------------------------------------------- exact helpers
def exact(t: Tensor) -> Any:
    """Nested lists of Fractions equal to the tensor's values."""

    def conv(x: Any) -> Any:
        return [conv(v) for v in x] if isinstance(x, list) else Fraction(x)

    return conv(t.tolist())


def mean_layers(x: list) -> list:
    """list[L+1][d] -> list[d]."""
    return [sum(col) / len(x) for col in zip(*x)]


def dot(a: list, b: list) -> Any:
    return sum(x * y for x, y in zip(a, b))


def first_argmax(values: list) -> int:
    return max(range(len(values)), key=lambda i: (values[i], -i))


def first_argmin(values: list) -> int:
    return min(range(len(values)), key=lambda i: (values[i], i))


def make_inputs(
    seed: int, b: int, m: int, kind: str, dtype: torch.dtype = torch.float64
) -> tuple[Tensor, Tensor, Tensor]:
    """user [b, L+1, D], pos [b, L+1, D], cand [b, m, L+1, D]; kind "dyadic" (ties) or "normal"."""
    gen = torch.Generator().manual_seed(seed)

    def draw(*shape: int) -> Tensor:
        if kind == "dyadic":
            return (torch.randint(-4, 5, shape, generator=gen) / 4).to(dtype)
        return torch.randn(shape, generator=gen, dtype=dtype)

    return draw(b, L1, D), draw(b, L1, D), draw(b, m, L1, D)


def bpr(user: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
    """Pooled BPR loss of method.md §4 (without the L2 term): mean softplus(s_neg - s_pos)."""
    u = user.mean(1)
    return F.softplus((u * neg.mean(1)).sum(-1) - (u * pos.mean(1)).sum(-1)).mean()


# ----------------------------------------------------------------------------- contract mixin
class StrategyContract:
    """Behaviour every strategy must have; subclasses give the name, params and a brute-force reference."""

    name: ClassVar[str]
    params: ClassVar[dict[str, Any]] = {}
    layerwise: ClassVar[bool] = False  # index [B, L+1] instead of [B]
    random_pick: ClassVar[bool] = False  # the choice among equal candidates is random (DNS(M,N))
    mixes_positive: ClassVar[bool] = False  # the negative is a mixture involving the positive (MixGCF)
    n_parameters: ClassVar[int] = 0

    def make(self, **override: Any) -> Strategy:
        return build_strategy(self.name, {**self.params, **override}, D)

    @property
    def m(self) -> int:
        return self.make().n_candidates

    def brute_force(self, strategy: Strategy, user: Tensor, pos: Tensor, cand: Tensor, seed: int) -> list:
        """Per-row loop returning the chosen index per row (or per row and layer)."""
        raise NotImplementedError

    def expected_neg(self, sel: Selection, user: Tensor, pos: Tensor, cand: Tensor, seed: int) -> Tensor:
        return take_layerwise(cand, sel.index) if self.layerwise else take_rows(cand, sel.index)

    def select(self, strategy: Strategy, user: Tensor, pos: Tensor, cand: Tensor, seed: int) -> Selection:
        return strategy.select(user, pos, cand, torch.Generator().manual_seed(seed))

    # -- tests --------------------------------------------------------------------------------------
    @pytest.mark.parametrize("b", [1, 6])
    def test_shapes_and_index_range(self, b: int) -> None:
        user, pos, cand = make_inputs(0, b, self.m, "normal", torch.float32)
        sel = self.select(self.make(), user, pos, cand, 0)
        assert sel.neg.shape == (b, L1, D) and sel.neg.dtype == torch.float32
        assert sel.index.shape == ((b, L1) if self.layerwise else (b,)) and sel.index.dtype == torch.long
        assert bool((sel.index >= 0).all()) and bool((sel.index < self.m).all())

    @pytest.mark.parametrize("kind", ["dyadic", "normal"])
    @pytest.mark.parametrize("b, seed", [(1, 11), (9, 12), (9, 13)])
    def test_matches_brute_force(self, kind: str, b: int, seed: int) -> None:
        strategy = self.make().double()
        user, pos, cand = make_inputs(seed, b, self.m, kind)
        sel = self.select(strategy, user, pos, cand, seed)
        assert sel.index.tolist() == self.brute_force(strategy, user, pos, cand, seed)
        assert torch.equal(sel.neg, self.expected_neg(sel, user, pos, cand, seed))

    def test_negative_rebuilds_from_chosen_rows(self) -> None:
        """Models choose on detached candidates and call ``negative`` on the chosen rows re-gathered with
        gradient; the result must equal the selected negative (``grad`` strategies are never rebuilt)."""
        strategy = self.make().double()
        user, pos, cand = make_inputs(5, 7, self.m, "normal")
        sel = self.select(strategy, user, pos, cand, 5)
        if strategy.choice_input == "grad":
            return
        chosen = take_layerwise(cand, sel.index) if sel.index.dim() == 2 else take_rows(cand, sel.index)
        assert torch.equal(strategy.negative(sel, pos, chosen), sel.neg)

    @pytest.mark.parametrize("rows_per_block", [1, 3, None])
    def test_choose_in_blocks_then_finish_equals_select(self, rows_per_block: int | None) -> None:
        """What models run: the choice without gradient in row blocks among rows of an item table, then the
        negative (and any auxiliary loss) rebuilt from the chosen rows; equal to one ``select`` call."""
        strategy = self.make().double()
        gen = torch.Generator().manual_seed(14)
        table = torch.randn(30, L1, D, generator=gen, dtype=torch.float64)
        user, pos = torch.randn(2, 10, L1, D, generator=gen, dtype=torch.float64)
        cand_ids = torch.randint(0, 30, (10, self.m), generator=gen)
        whole = self.select(strategy, user, pos, table[cand_ids], 15)
        if strategy.choice_input == "grad":
            with pytest.raises(ValueError, match="call select"):
                strategy.choose(user, pos, table, cand_ids)
            return
        chosen = strategy.choose(user, pos, table, cand_ids, torch.Generator().manual_seed(15), rows_per_block)
        assert torch.equal(chosen.index, whole.index) and chosen.clamped == whole.clamped
        ids = chosen.item_ids(cand_ids)
        rows = table[ids] if ids.dim() == 1 else table[ids, torch.arange(L1)]
        done = strategy.finish(chosen, user, pos, rows)
        assert torch.equal(done.neg, whole.neg)
        assert (done.aux_loss is None) == (whole.aux_loss is None)
        if whole.aux_loss is not None:
            torch.testing.assert_close(done.aux_loss, whole.aux_loss, rtol=0, atol=0)

    def test_all_equal_candidates_tie_break(self) -> None:
        strategy = self.make().double()
        user, pos, cand = make_inputs(3, 5, self.m, "normal")
        cand = cand[:, :1].expand_as(cand).contiguous()
        sel = self.select(strategy, user, pos, cand, 3)
        assert sel.index.tolist() == self.brute_force(strategy, user, pos, cand, 3)
        if not self.random_pick:
            assert not bool(sel.index.any()), "ties must resolve to the lowest candidate index"

    def test_deterministic_under_seed(self) -> None:
        strategy = self.make()
        user, pos, cand = make_inputs(4, 16, self.m, "normal", torch.float32)
        first, second = (self.select(strategy, user, pos, cand, 99) for _ in range(2))
        assert torch.equal(first.index, second.index) and torch.equal(first.neg, second.neg)

    def test_never_a_training_positive_with_sampler_candidates(self) -> None:
        n_users, n_items = 7, 40
        gen = torch.Generator().manual_seed(5)
        seen = (torch.rand(n_users, n_items, generator=gen) < 0.4) & (torch.arange(n_items) > 0)
        users_idx, items_idx = seen.nonzero(as_tuple=True)
        sampler = CandidateSampler.from_pairs(users_idx, items_idx, n_users, n_items)
        user_table = torch.randn(n_users, L1, D, generator=gen)
        item_table = torch.randn(n_items, L1, D, generator=gen)
        users = torch.arange(n_users).repeat(3)
        pos_ids = torch.stack([seen[u].nonzero()[0, 0] for u in users.tolist()])
        cand_ids = sampler.sample(users, self.m, gen)
        sel = self.make().select(user_table[users], item_table[pos_ids], item_table[cand_ids], gen)
        chosen = sel.item_ids(cand_ids)
        assert chosen.shape == sel.index.shape
        assert bool((chosen > 0).all())
        assert not bool(seen[users.view(-1, *([1] * (chosen.dim() - 1))).expand_as(chosen), chosen].any())

    def test_gradients_reach_only_the_chosen_candidates(self) -> None:
        user, pos, cand = (x.requires_grad_() for x in make_inputs(6, 5, self.m, "normal", torch.float32))
        sel = self.make().select(user, pos, cand, torch.Generator().manual_seed(6))
        loss = bpr(user, pos, sel.neg) + (sel.aux_loss if sel.aux_loss is not None else 0.0)
        loss.backward()
        index = sel.index if self.layerwise else sel.index.unsqueeze(1).expand(-1, L1)  # [B, L+1]
        chosen = torch.zeros(cand.shape[:3], dtype=torch.bool)
        chosen.scatter_(1, index.unsqueeze(1), True)
        assert cand.grad is not None and user.grad is not None and pos.grad is not None
        assert not bool(cand.grad[~chosen].any()), "a candidate that was not chosen received gradient"
        assert bool(cand.grad.norm(dim=-1)[chosen].gt(0).all()), "a chosen candidate received no gradient"

    def test_negative_depends_on_positive_only_when_mixing(self) -> None:
        user, pos, cand = make_inputs(7, 4, self.m, "normal", torch.float32)
        pos.requires_grad_()
        cand.requires_grad_()
        self.make().select(user, pos, cand, torch.Generator().manual_seed(7)).neg.sum().backward()
        moved = pos.grad is not None and bool(pos.grad.any())
        assert moved == self.mixes_positive

    @pytest.mark.parametrize("scale", [1.0, 1e3])
    def test_loss_finite(self, scale: float) -> None:
        user, pos, cand = (x * scale for x in make_inputs(8, 32, self.m, "normal", torch.float32))
        sel = self.make().select(user, pos, cand, torch.Generator().manual_seed(8))
        loss = bpr(user, pos, sel.neg) + (sel.aux_loss if sel.aux_loss is not None else 0.0)
        assert loss.dim() == 0 and bool(torch.isfinite(loss)) and bool(torch.isfinite(sel.neg).all())

    def test_parameters(self) -> None:
        assert sum(p.numel() for p in self.make().parameters()) == self.n_parameters

    def test_rejects_bad_shapes(self) -> None:
        strategy = self.make()
        user, pos, cand = make_inputs(9, 3, self.m, "normal", torch.float32)
        with pytest.raises(ValueError, match=f"expected M = n_candidates = {self.m}"):
            strategy.select(user, pos, torch.cat([cand, cand[:, :1]], dim=1))
        with pytest.raises(ValueError, match="pos must have the user's shape"):
            strategy.select(user, pos[:2], cand)
        with pytest.raises(ValueError, match=rf"user must be \[B, L\+1, {D}\]"):
            strategy.select(user[..., :4], pos[..., :4], cand[..., :4])
        with pytest.raises(ValueError, match=r"cand must be \[3, M, 4, 8\]"):
            strategy.select(user, pos, cand[:, :, :2])


# ----------------------------------------------------------------------------- strategies
class TestRNS(StrategyContract):
    name = "rns"

    def brute_force(self, strategy: Strategy, user: Tensor, pos: Tensor, cand: Tensor, seed: int) -> list:
        return [0] * user.shape[0]

    def test_loader_contract(self) -> None:
        strategy = self.make()
        assert (strategy.n_candidates, strategy.distribution) == (1, "uniform")


class TestPNS(TestRNS):
    name = "pns"
    params = {"pop_alpha": 0.5}

    def test_loader_contract(self) -> None:
        strategy = self.make()
        assert (strategy.n_candidates, strategy.distribution, strategy.pop_alpha) == (1, "popularity", 0.5)


class TestDNS(StrategyContract):
    name = "dns"
    params = {"n_candidates": 8}

    def brute_force(self, strategy: Strategy, user: Tensor, pos: Tensor, cand: Tensor, seed: int) -> list:
        u, c = exact(user), exact(cand)
        return [
            first_argmax([dot(mean_layers(u[b]), mean_layers(c[b][m])) for m in range(len(c[b]))])
            for b in range(len(u))
        ]


class TestDNSMN(StrategyContract):
    name = "dns_mn"
    params = {"n_candidates": 8, "top_n": 3}
    random_pick = True

    def brute_force(self, strategy: Strategy, user: Tensor, pos: Tensor, cand: Tensor, seed: int) -> list:
        top_n = strategy.args.top_n  # type: ignore[attr-defined]
        pick = torch.randint(0, top_n, (user.shape[0], 1), generator=torch.Generator().manual_seed(seed))
        u, c = exact(user), exact(cand)
        out = []
        for b in range(len(u)):
            scores = [dot(mean_layers(u[b]), mean_layers(c[b][m])) for m in range(len(c[b]))]
            order = sorted(range(len(scores)), key=lambda m: (-scores[m], m))
            out.append(order[int(pick[b, 0])])
        return out

    def test_top_n_one_is_dns_and_top_n_m_is_uniform(self) -> None:
        user, pos, cand = make_inputs(21, 64, 8, "normal")
        dns = build_strategy("dns", {"n_candidates": 8}, D).select(user, pos, cand)
        one = self.make(top_n=1).select(user, pos, cand, torch.Generator().manual_seed(0))
        assert torch.equal(one.index, dns.index)
        uniform = self.make(top_n=8)
        picks = torch.cat([uniform.select(user, pos, cand, torch.Generator().manual_seed(s)).index for s in range(20)])
        assert set(picks.tolist()) == set(range(8))


class TestMixGCF(StrategyContract):
    name = "mixgcf"
    params = {"n_candidates": 8}
    layerwise = True
    mixes_positive = True

    @staticmethod
    def weights(user: Tensor, seed: int) -> Tensor:
        """The strategy's mixing weights for this seed, ``[B, 1, L+1, 1]`` (its only random draw)."""
        return torch.rand((user.shape[0], 1, L1, 1), generator=torch.Generator().manual_seed(seed), dtype=user.dtype)

    def brute_force(self, strategy: Strategy, user: Tensor, pos: Tensor, cand: Tensor, seed: int) -> list:
        w = exact(self.weights(user, seed))
        u, p, c = exact(user), exact(pos), exact(cand)
        out = []
        for b in range(len(u)):
            ub = mean_layers(u[b])
            row = []
            for layer in range(L1):
                a = w[b][0][layer][0]
                scores = [
                    dot(ub, [a * pk + (1 - a) * ck for pk, ck in zip(p[b][layer], c[b][m][layer])])
                    for m in range(len(c[b]))
                ]
                row.append(first_argmax(scores))
            out.append(row)
        return out

    def expected_neg(self, sel: Selection, user: Tensor, pos: Tensor, cand: Tensor, seed: int) -> Tensor:
        a = self.weights(user, seed).squeeze(1)  # [B, L+1, 1]
        return a * pos + (1 - a) * take_layerwise(cand, sel.index)


class TestAHNS(StrategyContract):
    name = "ahns"
    params = {"n_candidates": 8}

    def brute_force(self, strategy: Strategy, user: Tensor, pos: Tensor, cand: Tensor, seed: int) -> list:
        args = strategy.args
        u, p, c = exact(user), exact(pos), exact(cand)
        out = []
        for b in range(len(u)):
            ub = mean_layers(u[b])
            base = dot(ub, mean_layers(p[b])) + Fraction(args.alpha)  # type: ignore[attr-defined]
            base_f = float(base) if base >= Fraction(AHNS_EPS) else AHNS_EPS
            target = Fraction(args.beta * base_f ** (args.p + 1))  # type: ignore[attr-defined]
            out.append(first_argmin([abs(dot(ub, mean_layers(c[b][m])) - target) for m in range(len(c[b]))]))
        return out

    @pytest.mark.parametrize("p", [-2.0, -1.5, 0.5])
    def test_guard_when_positive_score_plus_alpha_is_not_positive(self, p: float) -> None:
        user, pos, cand = make_inputs(30, 6, 8, "normal")
        ub = user.mean(1)
        # Rows 0-2: s_pos + alpha = -3, ~0, -1e-9; rows 3-5: +2. Rescale pos to hit those scores.
        wanted = torch.tensor([-4.0, -1.0, -1.0 - 1e-9, 1.0, 1.0, 1.0], dtype=torch.float64)
        pos = pos * (wanted / (ub * pos.mean(1)).sum(-1))[:, None, None]
        strategy = self.make(p=p).double()
        sel = strategy.select(user, pos, cand)
        assert sel.clamped == 3
        assert sel.index.tolist() == self.brute_force(strategy, user, pos, cand, 0)
        scores = (ub[:, None] * cand.mean(2)).sum(-1)
        # Clamped base eps: target beta*eps^(p+1) is huge for p < -1 (DNS), tiny for p > -1 (closest to 0).
        if p < -1:
            assert torch.equal(sel.index[:3], scores.argmax(1)[:3])
        assert bool(torch.isfinite(sel.neg).all())

    def test_clamped_is_zero_for_healthy_rows(self) -> None:
        user, pos, cand = make_inputs(31, 5, 8, "normal")
        pos = pos * (1.0 / (user.mean(1) * pos.mean(1)).sum(-1))[:, None, None]  # s_pos = 1
        assert self.make().select(user, pos, cand).clamped == 0


class TestDENS(StrategyContract):
    name = "dens"
    params = {"n_candidates": 8, "dens_alpha": 0.3}
    layerwise = True
    n_parameters = 4 * (D * D + D)

    @staticmethod
    def gates(strategy: Strategy) -> dict[str, tuple[list, list]]:
        return {
            name: (getattr(strategy, name).weight.tolist(), getattr(strategy, name).bias.tolist())
            for name in ("item_gate", "user_gate", "neg_gate", "pos_gate")
        }

    @staticmethod
    def linear(gate: tuple[list, list], x: list[float]) -> list[float]:
        weight, bias = gate
        return [sum(w * v for w, v in zip(row, x)) + b for row, b in zip(weight, bias)]

    @staticmethod
    def sigmoid(z: float) -> float:
        return 1.0 / (1.0 + math.exp(-z))

    def relevant_pos(self, g: dict, u: list, p: list) -> list[float]:
        zi, zu = self.linear(g["item_gate"], p), self.linear(g["user_gate"], u)
        return [pk * self.sigmoid(a + b) for pk, a, b in zip(p, zi, zu)]

    def relevant_neg(self, g: dict, c: list, r_p: list) -> list[float]:
        zn, zp = self.linear(g["neg_gate"], c), self.linear(g["pos_gate"], r_p)
        return [ck * self.sigmoid(a + b) for ck, a, b in zip(c, zn, zp)]

    def brute_force(self, strategy: Strategy, user: Tensor, pos: Tensor, cand: Tensor, seed: int) -> list:
        g, a = self.gates(strategy), strategy.args.dens_alpha  # type: ignore[attr-defined]
        u, p, c = user.tolist(), pos.tolist(), cand.tolist()
        out = []
        for b in range(len(u)):
            row = []
            for layer in range(L1):
                r_p = self.relevant_pos(g, u[b][layer], p[b][layer])
                scores = []
                for m in range(len(c[b])):
                    cm = c[b][m][layer]
                    r_c = self.relevant_neg(g, cm, r_p)
                    scores.append(dot(u[b][layer], [(1 - a) * ck - rk for ck, rk in zip(cm, r_c)]))
                row.append(first_argmax(scores))
            out.append(row)
        return out

    @pytest.mark.parametrize("dens_alpha", [0.0, 1.0])
    def test_alpha_extremes_match_brute_force(self, dens_alpha: float) -> None:
        strategy = self.make(dens_alpha=dens_alpha).double()
        user, pos, cand = make_inputs(40, 7, 8, "normal")
        assert strategy.select(user, pos, cand).index.tolist() == self.brute_force(strategy, user, pos, cand, 0)

    def test_aux_loss_matches_per_row_formula(self) -> None:
        strategy = self.make(gamma=0.7).double()
        user, pos, cand = make_inputs(41, 5, 8, "normal")
        sel = strategy.select(user, pos, cand)
        g, u, p, n = self.gates(strategy), user.tolist(), pos.tolist(), sel.neg.tolist()

        def softplus(x: float) -> float:
            return max(x, 0.0) + math.log1p(math.exp(-abs(x)))

        total = 0.0
        for b in range(len(u)):
            ub = [sum(col) / L1 for col in zip(*u[b])]
            r_p = [self.relevant_pos(g, u[b][layer], p[b][layer]) for layer in range(L1)]
            r_n = [self.relevant_neg(g, n[b][layer], r_p[layer]) for layer in range(L1)]

            def score(x: list[list[float]]) -> float:
                return sum(uk * vk for uk, vk in zip(ub, [sum(col) / L1 for col in zip(*x)]))

            ir_p = [[x - r for x, r in zip(xs, rs)] for xs, rs in zip(p[b], r_p)]
            ir_n = [[x - r for x, r in zip(xs, rs)] for xs, rs in zip(n[b], r_n)]
            s_rp, s_irp, s_rn, s_irn = score(r_p), score(ir_p), score(r_n), score(ir_n)
            total += (
                softplus(s_irp - s_rp) + softplus(s_rn - s_irn) + softplus(s_rn - s_rp) + softplus(s_irp - s_irn)
            ) / 4
        assert sel.aux_loss is not None
        assert sel.aux_loss.item() == pytest.approx(0.7 * total / len(u), rel=1e-12)

    def test_aux_loss_trains_the_gates(self) -> None:
        strategy = self.make()
        user, pos, cand = make_inputs(42, 5, 8, "normal", torch.float32)
        sel = strategy.select(user, pos, cand)
        assert sel.aux_loss is not None and sel.aux_loss.dim() == 0
        sel.aux_loss.backward()
        for name, parameter in strategy.named_parameters():
            assert parameter.grad is not None and bool(parameter.grad.any()), name
        assert self.make(gamma=0.0).select(user, pos, cand).aux_loss.item() == 0.0  # type: ignore[union-attr]


def test_every_baseline_has_a_contract_test() -> None:
    tested = {cls.name for cls in StrategyContract.__subclasses__()} | {TestPNS.name}
    assert {"rns", "pns", "dns", "dns_mn", "mixgcf", "ahns", "dens"} <= tested  # neggen: test_neggen_strategy.py
    assert tested <= set(STRATEGIES.names())


# ----------------------------------------------------------------------------- row helpers
def test_row_dots_index_rows_chosen_rows_match_loops() -> None:
    from recbole_neggen.sampling.base import chosen_rows, index_rows, row_dots

    gen = torch.Generator().manual_seed(31)
    x, y = torch.randn(5, 7, D, generator=gen, dtype=torch.float64), torch.randn(5, D, generator=gen, dtype=torch.float64)
    dots = row_dots(x, y)
    assert dots.shape == (5, 7)
    for b in range(5):
        for n in range(7):
            assert dots[b, n].item() == pytest.approx(sum(x[b, n, k].item() * y[b, k].item() for k in range(D)), rel=1e-12)
    table = torch.randn(9, L1, D, generator=gen)
    ids = torch.randint(0, 9, (4, 3), generator=gen)
    rows = index_rows(table, ids)
    assert rows.shape == (4, 3, L1, D)
    assert all(torch.equal(rows[b, m], table[ids[b, m]]) for b in range(4) for m in range(3))
    per_layer = torch.randint(0, 9, (4, L1), generator=gen)
    chosen = chosen_rows(table, per_layer)
    assert all(torch.equal(chosen[b, l], table[per_layer[b, l], l]) for b in range(4) for l in range(L1))
    assert torch.equal(chosen_rows(table, ids[:, 0]), table[ids[:, 0]])
