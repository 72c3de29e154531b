"""CandidateSampler: correctness of the support, exact distributions, fallback, validation."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from recbole_neggen.sampling import CandidateSampler, alias_table, candidates

# 5 users, items 1..9 (n_items = 10, item 0 = [PAD]); item 9 never occurs in training.
TRAIN = {0: [1, 2, 3], 1: [2], 2: [1, 2, 3, 4, 5, 6, 7], 3: [], 4: [4, 8]}
N_USERS, N_ITEMS = 5, 10


def train_pairs() -> tuple[np.ndarray, np.ndarray]:
    users = np.array([u for u, items in TRAIN.items() for _ in items], dtype=np.int64)
    items = np.array([i for seen in TRAIN.values() for i in seen], dtype=np.int64)
    return users, items


def make_sampler(**kwargs: object) -> CandidateSampler:
    users, items = train_pairs()
    return CandidateSampler.from_pairs(users, items, N_USERS, N_ITEMS, **kwargs)  # type: ignore[arg-type]


def counts_of(draws: torch.Tensor) -> np.ndarray:
    return np.bincount(draws.reshape(-1).numpy(), minlength=N_ITEMS)


def expected_probs(user: int, distribution: str, alpha: float, pool: str) -> np.ndarray:
    """Brute-force target distribution of one user's candidates, [N_ITEMS]."""
    f = np.zeros(N_ITEMS)
    for seen in TRAIN.values():
        f[seen] += 1
    if distribution == "popularity":
        w = np.where(f > 0, f**alpha, 0.0)
    else:
        w = np.ones(N_ITEMS) if pool == "all" else (f > 0).astype(float)
    w[0] = 0.0
    w[TRAIN[user]] = 0.0
    return w / w.sum()


def chi_square_pvalue(observed: np.ndarray, probs: np.ndarray) -> float:
    support = probs > 0
    assert observed[~support].sum() == 0, f"drew items outside the support: {np.nonzero(observed * ~support)[0]}"
    if support.sum() == 1:
        return 1.0
    return float(stats.chisquare(observed[support], probs[support] * observed.sum()).pvalue)


@pytest.fixture(params=["bitmap", "binary-search"], autouse=True)
def membership(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with both membership tests of :meth:`CandidateSampler.is_positive`."""
    if request.param == "binary-search":
        monkeypatch.setattr(candidates, "BITMAP_MAX_CELLS", 0)
    return request.param


CONFIGS = [
    ("uniform", 1.0, "all"),
    ("uniform", 1.0, "train_items"),
    ("popularity", 1.0, "all"),
    ("popularity", 0.5, "train_items"),
]


@pytest.mark.parametrize("distribution, alpha, pool", CONFIGS)
@pytest.mark.parametrize("max_rounds", [16, 0], ids=["rejection", "exact-fallback"])
def test_never_positive_nor_padding(distribution: str, alpha: float, pool: str, max_rounds: int) -> None:
    sampler = make_sampler(distribution=distribution, alpha=alpha, pool=pool, max_rounds=max_rounds)
    users = torch.tensor([0, 1, 2, 3, 4, 2, 2, 0])
    cand = sampler.sample(users, 64, torch.Generator().manual_seed(1))
    assert cand.shape == (8, 64) and cand.dtype == torch.long
    assert bool((cand >= 1).all()) and bool((cand < N_ITEMS).all())
    for row, user in zip(cand.tolist(), users.tolist()):
        assert not set(row) & set(TRAIN[user]), f"user {user} got a training positive"


@pytest.mark.parametrize("distribution, alpha, pool", CONFIGS)
@pytest.mark.parametrize("max_rounds", [16, 0], ids=["rejection", "exact-fallback"])
@pytest.mark.parametrize("user", [0, 2, 3])
def test_distribution_matches_target(distribution: str, alpha: float, pool: str, max_rounds: int, user: int) -> None:
    sampler = make_sampler(distribution=distribution, alpha=alpha, pool=pool, max_rounds=max_rounds)
    draws = sampler.sample(torch.full((200,), user), 100, torch.Generator().manual_seed(7))
    observed = counts_of(draws)
    probs = expected_probs(user, distribution, alpha, pool)
    assert chi_square_pvalue(observed, probs) > 1e-4


def test_chi_square_detects_a_wrong_target() -> None:
    """The distribution test above has power: uniform draws are rejected against the popularity target."""
    draws = make_sampler(pool="train_items").sample(torch.full((200,), 3), 100, torch.Generator().manual_seed(7))
    with pytest.raises(AssertionError):
        assert chi_square_pvalue(counts_of(draws), expected_probs(3, "popularity", 1.0, "all")) > 1e-4


def test_zero_count_items_never_drawn_by_popularity_or_train_pool() -> None:
    for kwargs in ({"distribution": "popularity"}, {"pool": "train_items"}):
        draws = make_sampler(**kwargs).sample(torch.arange(N_USERS), 500, torch.Generator().manual_seed(0))
        assert counts_of(draws)[9] == 0, kwargs
    draws = make_sampler().sample(torch.arange(N_USERS), 500, torch.Generator().manual_seed(0))
    assert counts_of(draws)[9] > 0  # pool "all" does draw the never-trained item


def test_item_counts_and_admissible_counts() -> None:
    sampler = make_sampler(pool="train_items")
    assert sampler.item_counts.tolist() == [0, 2, 3, 2, 2, 1, 1, 1, 1, 0]
    assert sampler.n_admissible.tolist() == [8 - 3, 8 - 1, 8 - 7, 8, 8 - 2]
    assert make_sampler().n_admissible.tolist() == [9 - 3, 9 - 1, 9 - 7, 9, 9 - 2]


def test_deterministic_under_seed() -> None:
    sampler = make_sampler(distribution="popularity")
    users = torch.tensor([0, 2, 4, 2])
    a = sampler.sample(users, 16, torch.Generator().manual_seed(3))
    b = sampler.sample(users, 16, torch.Generator().manual_seed(3))
    c = sampler.sample(users, 16, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_all_items_seen_raises_with_user_id() -> None:
    users, items = train_pairs()
    full = np.arange(1, N_ITEMS)
    sampler = CandidateSampler.from_pairs(
        np.concatenate([users, np.full(9, 3)]), np.concatenate([items, full]), N_USERS, N_ITEMS
    )
    with pytest.raises(ValueError, match=r"user\(s\) \[3\] have interacted with every drawable item"):
        sampler.sample(torch.tensor([0, 3, 1]), 4, torch.Generator())
    assert sampler.sample(torch.tensor([0, 1]), 4, torch.Generator()).shape == (2, 4)


def test_train_items_pool_exhausted_raises() -> None:
    sampler = CandidateSampler.from_pairs([0, 0, 1], [1, 2, 1], 2, 4, pool="train_items")
    with pytest.raises(ValueError, match=r"\[0\].*pool='train_items'"):
        sampler.sample(torch.tensor([1, 0]), 2, torch.Generator())
    assert set(sampler.sample(torch.tensor([1]), 50, torch.Generator()).tolist()[0]) == {2}


def test_csr_constructor_matches_from_pairs() -> None:
    indptr = [0, 3, 4, 11, 11, 13]
    indices = [i for u in range(N_USERS) for i in TRAIN[u]]
    direct = CandidateSampler(np.array(indptr), np.array(indices, dtype=np.int32), N_ITEMS, distribution="popularity")
    built = make_sampler(distribution="popularity")
    assert torch.equal(direct.indptr, built.indptr) and torch.equal(direct.indices, built.indices)
    gen_a, gen_b = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    users = torch.arange(N_USERS)
    assert torch.equal(direct.sample(users, 8, gen_a), built.sample(users, 8, gen_b))


def test_from_pairs_ignores_duplicates() -> None:
    sampler = CandidateSampler.from_pairs([1, 0, 1, 1], [3, 2, 3, 1], 2, 5)
    assert sampler.indptr.tolist() == [0, 1, 3] and sampler.indices.tolist() == [2, 1, 3]


def test_is_positive(membership: str) -> None:
    sampler = make_sampler()
    assert (sampler._bitmap is not None) == (membership == "bitmap")
    users = torch.tensor([0, 0, 2, 3, 4, 4])
    items = torch.tensor([3, 4, 7, 1, 8, 9])
    assert sampler.is_positive(users, items).tolist() == [True, False, True, False, True, False]


def test_is_positive_equals_brute_force_on_a_random_grid() -> None:
    rng = np.random.default_rng(5)
    n_users, n_items = 37, 100  # 3,700 cells: many words, and a last word only partly used
    users, items = rng.integers(0, n_users, 600), rng.integers(1, n_items, 600)
    sampler = CandidateSampler.from_pairs(users, items, n_users, n_items)
    seen = set(zip(users.tolist(), items.tolist()))
    grid_u, grid_i = torch.meshgrid(torch.arange(n_users), torch.arange(n_items), indexing="ij")
    got = sampler.is_positive(grid_u.reshape(-1), grid_i.reshape(-1)).view(n_users, n_items)
    want = torch.tensor([[(u, i) in seen for i in range(n_items)] for u in range(n_users)])
    assert torch.equal(got, want) and 0 < int(want.sum()) < want.numel()


def test_empty_batch() -> None:
    assert make_sampler().sample(torch.empty(0, dtype=torch.long), 3, torch.Generator()).shape == (0, 3)


@pytest.mark.parametrize(
    "indptr, indices, match",
    [
        ([1, 2], [1], "starting at 0"),
        ([0, 2, 1], [1, 2], "indptr decreases at user 1"),
        ([0, 1, 3], [1, 2], r"indptr\[-1\]=3 must equal len\(indices\)=2"),
        ([0, 2], [0, 1], r"indices\[0\]=0 out of range \[1, 10\) \(item 0 is \[PAD\]\)"),
        ([0, 2], [1, 10], r"indices\[1\]=10 out of range"),
        ([0, 1, 3], [4, 5, 2], r"user 1 must be strictly increasing.*indices\[1\]=5, indices\[2\]=2"),
        ([0, 2], [3, 3], "user 0 must be strictly increasing"),
        ([0, 1], [1.0], "1-D integer array"),
    ],
)
def test_bad_csr_rejected(indptr: list, indices: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CandidateSampler(np.array(indptr), np.array(indices), N_ITEMS)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"distribution": "zipf"}, "distribution must be 'uniform' or 'popularity'"),
        ({"pool": "seen"}, "pool must be 'all' or 'train_items'"),
        ({"alpha": float("nan")}, "alpha must be a finite number"),
        ({"max_rounds": -1}, "max_rounds must be an int >= 0"),
    ],
)
def test_bad_options_rejected(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_sampler(**kwargs)


def test_bad_sample_arguments_rejected() -> None:
    sampler = make_sampler()
    with pytest.raises(ValueError, match=r"user ids must lie in \[0, 5\), got range \[0, 5\]"):
        sampler.sample(torch.tensor([0, 5]), 2, torch.Generator())
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        sampler.sample(torch.tensor([0]), 0, torch.Generator())
    with pytest.raises(ValueError, match="1-D integer array"):
        sampler.sample(torch.tensor([0.0]), 1, torch.Generator())
    with pytest.raises(ValueError, match=r"item ids must lie in \[1, 10\)"):
        CandidateSampler.from_pairs([0], [0], N_USERS, N_ITEMS)


@pytest.mark.parametrize("weights", [[1.0, 1.0, 1.0], [5.0, 0.0, 1.0, 2.0], [1e-3, 7.0, 0.5, 0.5, 3.0, 1.0]])
def test_alias_table_encodes_the_weights_exactly(weights: list[float]) -> None:
    w = torch.tensor(weights, dtype=torch.float64)
    prob, alias = alias_table(w)
    k = w.numel()
    implied = prob.clone()
    implied.index_add_(0, alias, 1.0 - prob)
    torch.testing.assert_close(implied / k, w / w.sum(), rtol=0, atol=1e-12)
