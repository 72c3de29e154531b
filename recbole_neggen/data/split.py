"""MMRec's interaction filtering and per-user split rule (method.md §5), seeded."""
from __future__ import annotations

import numpy as np


def split_sizes(n: int) -> tuple[int, int, int]:
    """(train, valid, test) for a user with ``n`` interactions.

    n < 10: n-2 / 1 / 1; else v = floor(0.2 n), valid = floor(v / 2), test = v - valid, train = n - v.
    """
    if n < 3:
        raise ValueError(f"a user needs at least 3 interactions to be split, got {n}")
    if n < 10:
        return n - 2, 1, 1
    v = int(0.2 * n)
    return n - v, v // 2, v - v // 2


def mmrec_split(users: np.ndarray, seed: int) -> np.ndarray:
    """x_label per row (0/1/2 = train/valid/test) after a seeded shuffle of each user's rows.

    users: int [N] user index per interaction row. Returns int8 [N]; row order is untouched.
    """
    users = np.asarray(users)
    rng = np.random.default_rng(seed)
    labels = np.empty(users.shape[0], dtype=np.int8)
    order = np.argsort(users, kind="stable")
    bounds = np.flatnonzero(np.diff(users[order])) + 1
    for rows in np.split(order, bounds):
        if rows.size == 0:
            continue
        n_train, n_valid, _ = split_sizes(rows.size)
        shuffled = rng.permutation(rows)
        labels[shuffled[:n_train]] = 0
        labels[shuffled[n_train : n_train + n_valid]] = 1
        labels[shuffled[n_train + n_valid :]] = 2
    return labels


def k_core(users: np.ndarray, items: np.ndarray, k: int) -> np.ndarray:
    """Boolean keep-mask [N] such that every kept user and item has >= k kept interactions.

    Iterates until stable (the usual k-core filter on the user-item bipartite graph).
    """
    keep = np.ones(users.shape[0], dtype=bool)
    while True:
        _, u_inv, u_cnt = np.unique(users[keep], return_inverse=True, return_counts=True)
        _, i_inv, i_cnt = np.unique(items[keep], return_inverse=True, return_counts=True)
        ok = (u_cnt[u_inv] >= k) & (i_cnt[i_inv] >= k)
        if ok.all():
            return keep
        idx = np.flatnonzero(keep)
        keep[idx[~ok]] = False
