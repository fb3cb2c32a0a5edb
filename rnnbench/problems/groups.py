"""The finite groups of group_word, built in code: multiplication tables of cyclic, symmetric and alternating groups.

Element 0 is always the identity. A product a·b is "a, then b": for permutations, (a·b)(i) = b(a(i)), so the
running product g_1·g_2·…·g_t of a word is the permutation that applying g_1 first, then g_2, …, then g_t makes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cache

import numpy as np


@dataclass(frozen=True)
class Group:
    """A finite group by its multiplication table: `table[a, b]` is the index of a·b; element 0 is the identity.
    `elements` describes each element (its residue, or its permutation in one-line notation)."""

    name: str
    table: np.ndarray  # (order, order) int64
    elements: tuple[tuple[int, ...], ...]

    @property
    def order(self) -> int:
        return len(self.table)

    def running_products(self, ids: np.ndarray) -> np.ndarray:
        """ids (n, steps) of elements, -1 for padding -> (n, steps) the running product g_1·…·g_t at each step
        (left to right); -1 where the input is padding. Vectorised over rows; one table lookup per step."""
        out = np.empty(ids.shape, dtype=np.int64)
        if ids.shape[1] == 0:
            return out
        real = ids >= 0
        current = np.where(real[:, 0], ids[:, 0], 0)
        out[:, 0] = current
        for t in range(1, ids.shape[1]):
            # padding only follows the real steps, so a padded step leaves the product as it was
            current = np.where(real[:, t], self.table[current, np.maximum(ids[:, t], 0)], current)
            out[:, t] = current
        return np.where(real, out, -1)


def _cyclic(n: int) -> tuple[np.ndarray, tuple[tuple[int, ...], ...]]:
    idx = np.arange(n)
    return (idx[:, None] + idx[None, :]) % n, tuple((i,) for i in range(n))


def _permutations(n: int, even_only: bool) -> tuple[np.ndarray, tuple[tuple[int, ...], ...]]:
    """All permutations of 0..n-1 (only the even ones for the alternating group), in lexicographic order, so the
    identity comes first; the table from composing every pair at once."""
    perms = np.array(list(itertools.permutations(range(n))), dtype=np.int64)
    if even_only:
        inversions = (perms[:, :, None] > perms[:, None, :]) & np.triu(np.ones((n, n), dtype=bool), 1)
        perms = perms[inversions.sum(axis=(1, 2)) % 2 == 0]
    k = len(perms)
    # composed[a, b, i] = b(a(i)): "a, then b"
    composed = perms[np.arange(k)[None, :, None], perms[:, None, :]]
    # a permutation's code in base n; lexicographic order makes the codes of `perms` ascending
    weights = n ** np.arange(n - 1, -1, -1)
    codes = perms @ weights
    table = np.searchsorted(codes, composed @ weights)
    return table, tuple(tuple(int(v) for v in p) for p in perms)


# name -> (how it is built, what it is), the five of PROBLEMS.md
_BUILDERS = {
    "z2": (lambda: _cyclic(2), "cyclic group of order 2 (parity's group)"),
    "z60": (lambda: _cyclic(60), "cyclic group of order 60 (abelian)"),
    "s3": (lambda: _permutations(3, even_only=False), "symmetric group on 3 points, order 6"),
    "a5": (lambda: _permutations(5, even_only=True), "alternating group on 5 points, order 60 (simple, non-solvable)"),
    "s5": (lambda: _permutations(5, even_only=False), "symmetric group on 5 points, order 120 (non-solvable)"),
}
GROUP_NAMES: tuple[str, ...] = tuple(_BUILDERS)


@cache
def group(name: str) -> Group:
    """The named group (built once per process); ValueError naming the value and the groups there are."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown group {name!r}; groups: {', '.join(GROUP_NAMES)}")
    table, elements = _BUILDERS[name][0]()
    table.flags.writeable = False  # shared by every caller
    return Group(name, table, elements)


def describe(name: str) -> str:
    return _BUILDERS[name][1]


__all__ = ["GROUP_NAMES", "Group", "describe", "group"]
