"""Negative sampling: a vectorised candidate sampler and selection strategies (pure torch, no RecBole).

The data loader draws ``n_candidates`` items per row with :class:`CandidateSampler` (from the strategy's
``distribution``); the model calls ``strategy.choose(user, pos, item_table, cand_ids, generator)`` (the
choice, without gradient, in cache-sized row blocks) and ``strategy.finish`` on the chosen rows, or
``strategy.select(user, pos, cand, generator)`` when the strategy needs every candidate's gradient.
New strategies register with ``@STRATEGIES.register("name")`` on a :class:`Strategy` subclass.
"""
from recbole_neggen.sampling.args import ParamSpec, StrategyArgs, param
from recbole_neggen.sampling.base import (
    STRATEGIES,
    Selection,
    Strategy,
    build_strategy,
    draw_index,
    draw_uniform,
    pool_layers,
    take_layerwise,
    take_rows,
)
from recbole_neggen.sampling.candidates import CandidateSampler, Distribution, Pool, alias_table
from recbole_neggen.sampling.strategies import (
    AHNS,
    AHNS_EPS,
    DENS,
    DNS,
    DNSMN,
    PNS,
    RNS,
    AHNSArgs,
    DENSArgs,
    DNSArgs,
    DNSMNArgs,
    MixGCF,
    MixGCFArgs,
    PNSArgs,
    RNSArgs,
    candidate_scores,
)

__all__ = [
    "AHNS",
    "AHNS_EPS",
    "AHNSArgs",
    "CandidateSampler",
    "DENS",
    "DENSArgs",
    "DNS",
    "DNSArgs",
    "DNSMN",
    "DNSMNArgs",
    "Distribution",
    "MixGCF",
    "MixGCFArgs",
    "PNS",
    "PNSArgs",
    "ParamSpec",
    "Pool",
    "RNS",
    "RNSArgs",
    "STRATEGIES",
    "Selection",
    "Strategy",
    "StrategyArgs",
    "alias_table",
    "build_strategy",
    "candidate_scores",
    "draw_index",
    "draw_uniform",
    "param",
    "pool_layers",
    "take_layerwise",
    "take_rows",
]
from recbole_neggen.sampling import neggen as _neggen  # noqa: E402,F401  (registers "neggen")
