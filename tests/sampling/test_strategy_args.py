"""Typed strategy hyperparameters, the registry and build_strategy."""
from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass
from typing import Any

import numpy as np
import pytest
import torch

from recbole_neggen.sampling import (
    AHNS,
    DNS,
    STRATEGIES,
    AHNSArgs,
    DENSArgs,
    DNSArgs,
    DNSMNArgs,
    MixGCFArgs,
    PNSArgs,
    RNSArgs,
    Selection,
    Strategy,
    StrategyArgs,
    build_strategy,
    param,
)


def test_defaults() -> None:
    assert RNSArgs() == RNSArgs(n_candidates=1)
    assert PNSArgs() == PNSArgs(n_candidates=1, pop_alpha=1.0)
    assert DNSArgs().n_candidates == 32
    assert DNSMNArgs() == DNSMNArgs(n_candidates=32, top_n=4)
    assert MixGCFArgs().n_candidates == 16
    assert AHNSArgs() == AHNSArgs(n_candidates=32, alpha=1.0, beta=0.1, p=-2.0)
    assert DENSArgs() == DENSArgs(n_candidates=32, dens_alpha=1.0, gamma=0.5)


def test_args_are_frozen_and_coerced() -> None:
    args = AHNSArgs.from_dict({"alpha": 1, "n_candidates": np.int64(8)})
    assert isinstance(args.alpha, float) and isinstance(args.n_candidates, int)
    with pytest.raises(FrozenInstanceError):
        args.alpha = 2.0  # type: ignore[misc]


@pytest.mark.parametrize(
    "name, params, match",
    [
        ("dns", {"n_candidate": 8}, r"unknown key\(s\) \['n_candidate'\]; allowed keys: n_candidates \(int >= 1, de"),
        ("dns", {"n_candidates": 0}, r"n_candidates must be int >= 1, got 0"),
        ("dns", {"n_candidates": 8.0}, r"n_candidates must be int >= 1, got float 8.0"),
        ("dns", {"n_candidates": True}, r"n_candidates must be int >= 1, got bool True"),
        ("rns", {"n_candidates": 4}, r"n_candidates must be int in \[1, 1\], got 4"),
        ("pns", {"pop_alpha": -0.5}, r"pop_alpha must be float >= 0.0, got -0.5"),
        ("pns", {"pop_alpha": "1e-3"}, r"pop_alpha must be float >= 0.0, got str '1e-3'"),
        ("dns_mn", {"n_candidates": 8, "top_n": 9}, r"top_n \(9\) must be <= n_candidates \(8\)"),
        ("ahns", {"p": -11.0}, r"p must be float in \[-10.0, 10.0\], got -11.0"),
        ("ahns", {"alpha": float("inf")}, r"alpha must be finite float, got inf"),
        ("ahns", {"beta": -0.1}, r"beta must be float >= 0.0"),
        ("dens", {"dens_alpha": 1.5}, r"dens_alpha must be float in \[0.0, 1.0\], got 1.5"),
        ("dens", {"alpha": 0.5}, r"unknown key\(s\) \['alpha'\]; allowed keys: n_candidates .*, dens_alpha .*, gamma"),
        ("dens", {"gamma": -1.0}, r"gamma must be float >= 0.0"),
    ],
)
def test_invalid_params_name_the_key_and_list_allowed(name: str, params: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        build_strategy(name, params, 8)
    message = str(info.value)
    assert message.startswith(f"negative strategy {name!r}: ")
    assert "allowed keys: n_candidates" in message


def test_params_must_be_a_mapping() -> None:
    with pytest.raises(ValueError, match="parameters must be a mapping, got list"):
        build_strategy("dns", [("n_candidates", 8)], 8)  # type: ignore[arg-type]


def test_unknown_strategy_lists_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown negative strategy 'hard'; choose one of: ahns, dens, dns, dns_mn"):
        build_strategy("hard", {}, 8)


def test_name_lookup_is_normalised() -> None:
    assert type(build_strategy("DNS-MN", {}, 8)).__name__ == "DNSMN"
    assert isinstance(build_strategy("MixGCF", {}, 8).args, MixGCFArgs)


@pytest.mark.parametrize("embedding_size", [0, -3, 2.0, True])
def test_bad_embedding_size(embedding_size: Any) -> None:
    with pytest.raises(ValueError, match="embedding_size must be an int >= 1"):
        build_strategy("dns", {}, embedding_size)


def test_wrong_args_type_rejected() -> None:
    with pytest.raises(TypeError, match="AHNS needs AHNSArgs, got DNSArgs"):
        AHNS(DNSArgs(), 8)


def test_loader_facing_attributes() -> None:
    for name in STRATEGIES.names():
        strategy = build_strategy(name, {}, 8)
        assert strategy.distribution == ("popularity" if name == "pns" else "uniform")
        assert strategy.n_candidates == strategy.args.n_candidates >= 1
    assert build_strategy("dns", {"n_candidates": 7}, 8).n_candidates == 7
    assert build_strategy("pns", {"pop_alpha": 0.75}, 8).pop_alpha == 0.75


def test_registering_a_new_strategy_is_one_decorator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(STRATEGIES, "_items", dict(STRATEGIES._items))  # restored after the test

    @dataclass(frozen=True)
    class LastArgs(StrategyArgs):
        n_candidates: int = param(4, int, low=1)

    @STRATEGIES.register("last_candidate")
    class Last(Strategy):
        args_type = LastArgs

        def _choose(self, user, pos, cand, generator):  # type: ignore[no-untyped-def]
            return Selection(index=torch.full((cand.shape[0],), cand.shape[1] - 1, dtype=torch.long))

    strategy = build_strategy("last_candidate", {"n_candidates": 3}, 2)
    cand = torch.randn(2, 3, 1, 2)
    selection = strategy.select(torch.zeros(2, 1, 2), torch.zeros(2, 1, 2), cand)
    assert selection.index.tolist() == [2, 2] and torch.equal(selection.neg, cand[:, 2])
    with pytest.raises(ValueError, match=r"allowed keys: n_candidates \(int >= 1, default 4\)"):
        build_strategy("last_candidate", {"top_n": 1}, 2)
    with pytest.raises(ValueError, match="registered twice"):
        STRATEGIES.register("dns")(Last)
    assert STRATEGIES.get("dns") is DNS
