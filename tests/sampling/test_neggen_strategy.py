"""The ``neggen`` strategy: the shared contract (without generated negatives it is DNS) and, with them,
a brute-force per-row loop using the same random draws."""
from __future__ import annotations

import pytest
import torch
import test_strategies
from test_strategies import D, L1, StrategyContract, dot, exact, first_argmax, make_inputs, mean_layers
from torch import Tensor

from recbole_neggen.sampling import Strategy, build_strategy


class TestNegGenStrategy(StrategyContract):
    name = "neggen"
    params = {"n_candidates": 8, "gen_ratio": 0.5}

    def brute_force(self, strategy: Strategy, user: Tensor, pos: Tensor, cand: Tensor, seed: int) -> list:
        u, c = exact(user), exact(cand)
        return [first_argmax([dot(mean_layers(u[b]), mean_layers(c[b][m])) for m in range(len(c[b]))])
                for b in range(len(u))]


@pytest.mark.parametrize("ratio", [0.0, 0.5, 1.0])
def test_generated_choice_matches_per_row_loop(ratio: float) -> None:
    strategy = build_strategy("neggen", {"n_candidates": 6, "gen_ratio": ratio}, D)
    user, pos, cand = make_inputs(21, 40, 6, "normal")
    gen = torch.randn(40, L1, D, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    has = torch.rand(40, generator=torch.Generator().manual_seed(2)) < 0.7
    sel = strategy.select(user, pos, cand, torch.Generator().manual_seed(3), gen=gen, gen_mask=has)
    draws = torch.rand(40, generator=torch.Generator().manual_seed(3))
    u, c = exact(user), exact(cand)
    for b in range(40):
        hardest = first_argmax([dot(mean_layers(u[b]), mean_layers(c[b][m])) for m in range(6)])
        assert sel.index[b] == hardest
        if bool(has[b]) and float(draws[b]) < ratio:
            assert sel.generated[b] and torch.equal(sel.neg[b], gen[b])
        else:
            assert not sel.generated[b] and torch.equal(sel.neg[b], cand[b, hardest])
    if ratio == 1.0:
        assert bool(sel.generated[has].all())


def test_generated_choice_in_blocks_equals_one_select() -> None:
    """``choose`` slices the generated negative and its mask with the rows of each block."""
    strategy = build_strategy("neggen", {"n_candidates": 6, "gen_ratio": 0.5}, D).double()
    gen = torch.Generator().manual_seed(24)
    table = torch.randn(20, L1, D, generator=gen, dtype=torch.float64)
    user, pos = torch.randn(2, 11, L1, D, generator=gen, dtype=torch.float64)
    cand_ids = torch.randint(0, 20, (11, 6), generator=gen)
    fake = torch.randn(11, L1, D, generator=gen, dtype=torch.float64)
    has = torch.rand(11, generator=gen) < 0.7
    whole = strategy.select(user, pos, table[cand_ids], torch.Generator().manual_seed(3), gen=fake, gen_mask=has)
    blocks = strategy.choose(user, pos, table, cand_ids, torch.Generator().manual_seed(3), 4, gen_mask=has)
    assert torch.equal(blocks.index, whole.index) and torch.equal(blocks.generated, whole.generated)
    assert bool(whole.generated.any())
    done = strategy.finish(blocks, user, pos, table[blocks.item_ids(cand_ids)], gen=fake)
    assert torch.equal(done.neg, whole.neg)


def test_generated_shape_checked() -> None:
    strategy = build_strategy("neggen", {"n_candidates": 4}, D)
    user, pos, cand = make_inputs(22, 3, 4, "normal")
    with pytest.raises(ValueError, match=r"gen_mask must be \[3\], got \[2\]"):
        strategy.select(user, pos, cand, gen=user, gen_mask=torch.ones(2, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"gen must be \[3, 4, 8\], got \[2, 4, 8\]"):
        strategy.select(user, pos, cand, gen=user[:2], gen_mask=torch.ones(3, dtype=torch.bool))


class TestNegGenStrategyAHNSReal(test_strategies.TestAHNS):
    """With ``real: ahns`` and no generated negatives, ``neggen`` chooses exactly as AHNS (same contract)."""

    name = "neggen"
    params = {"n_candidates": 8, "real": "ahns"}


def test_generated_choice_with_ahns_real_candidates() -> None:
    strategy = build_strategy("neggen", {"n_candidates": 6, "gen_ratio": 0.5, "real": "ahns"}, D)
    ahns = build_strategy("ahns", {"n_candidates": 6}, D)
    user, pos, cand = make_inputs(23, 30, 6, "normal")
    gen = torch.randn(30, L1, D, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    has = torch.ones(30, dtype=torch.bool)
    sel = strategy.select(user, pos, cand, torch.Generator().manual_seed(3), gen=gen, gen_mask=has)
    real = ahns.select(user, pos, cand).index
    assert 0 < int(sel.generated.sum()) < 30
    assert torch.equal(sel.index, real)


def test_unknown_real_rule_lists_choices() -> None:
    with pytest.raises(ValueError, match=r"real must be one of \['dns', 'ahns'\], got 'mixgcf'"):
        build_strategy("neggen", {"real": "mixgcf"}, D)
