import numpy as np
import pytest

from recbole_neggen.data.split import k_core, mmrec_split, split_sizes


@pytest.mark.parametrize("n,expected", [(3, (1, 1, 1)), (5, (3, 1, 1)), (9, (7, 1, 1)), (10, (8, 1, 1)),
                                        (14, (12, 1, 1)), (15, (12, 1, 2)), (20, (16, 2, 2)), (125, (100, 12, 13))])
def test_split_sizes_follow_mmrec_rule(n, expected):
    assert split_sizes(n) == expected
    assert sum(split_sizes(n)) == n


def test_split_sizes_rejects_too_few():
    with pytest.raises(ValueError, match="at least 3"):
        split_sizes(2)


def test_mmrec_split_counts_per_user_and_seeded():
    users = np.repeat(np.arange(4), [5, 12, 30, 3])
    users = users[np.random.default_rng(1).permutation(users.size)]  # rows need not be grouped
    labels = mmrec_split(users, seed=3)
    for u, n in enumerate([5, 12, 30, 3]):
        got = tuple(int((labels[users == u] == k).sum()) for k in range(3))
        assert got == split_sizes(n)
    assert np.array_equal(labels, mmrec_split(users, seed=3))
    assert not np.array_equal(labels, mmrec_split(users, seed=4))


def test_k_core_removes_until_stable():
    # user 9 has 1 interaction; removing it leaves item 5 with 2 < 3 interactions -> its users lose one
    users = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 9, 0, 1])
    items = np.array([1, 2, 3, 1, 2, 3, 1, 2, 3, 5, 5, 5])
    keep = k_core(users, items, 3)
    assert keep.tolist() == [True] * 9 + [False] * 3
