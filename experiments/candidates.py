"""Candidate treated sets for a geo experiment.

Three generators, combined by :func:`generate_candidates`:

* **exhaustive** enumeration of every treated set when their number is small;
* **matched markets**: each eligible geo with its most similar geos by
  pre-period similarity (correlation of the normalised outcome series, as
  GeoLift's market selection ranks markets), so that the treated aggregate
  has close donors;
* **stratified randomisation**: geos sorted by size (mean outcome) and cut
  into as many strata as treated geos, one geo drawn from each stratum, so the
  treated set spans the market sizes (Vaver & Koehler 2011 randomise within
  strata of similar geos).

All of them respect the user's constraints: geos that must be treated are in
every set, excluded geos in none, and set sizes lie in the requested range.
Every random draw comes from the seed given.

References
----------
Vaver, J. and Koehler, J. (2011). Measuring Ad Effectiveness Using Geo
Experiments. Google Inc.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from causal.errors import ConfigError


def similarity_matrix(Y: np.ndarray) -> np.ndarray:
    """Pearson correlation between geos' outcome series (columns of ``Y``).

    A constant series (correlation undefined) gets similarity 0 with every other geo.
    """
    Z = Y - Y.mean(axis=0)
    sd = np.sqrt((Z**2).sum(axis=0))
    ok = sd > 0
    Z[:, ok] /= sd[ok]
    Z[:, ~ok] = 0.0
    C = Z.T @ Z
    np.fill_diagonal(C, 1.0)
    return C


def check_constraints(
    geos: Sequence[str],
    n_treated: tuple[int, int],
    include: Sequence[str],
    exclude: Sequence[str],
    *,
    n_cells: int = 1,
    min_controls: int = 1,
) -> tuple[int, int]:
    """Raise :class:`ConfigError` naming the first constraint no design can meet.

    Returns the (low, high) treated-set size range.
    """
    lo, hi = int(n_treated[0]), int(n_treated[1])
    if lo < 1 or hi < lo:
        raise ConfigError(
            f"treated geos range {lo}..{hi} is empty or below 1 (give low <= high, low >= 1)"
        )
    both = sorted(set(include) & set(exclude))
    if both:
        raise ConfigError(f"geo '{both[0]}' is both included and excluded")
    if len(include) > hi:
        raise ConfigError(f"{len(include)} geos must be included but at most {hi} can be treated")
    G = len(geos)
    if n_cells * lo + min_controls > G:
        need = n_cells * lo + min_controls
        raise ConfigError(
            f"{n_cells * lo} treated geos ({n_cells} cell(s) x {lo}) plus {min_controls} control(s) need "
            f"{need} geos, but the panel has {G}"
        )
    eligible = G - len(set(exclude))
    if eligible < n_cells * lo:
        raise ConfigError(
            f"at least {n_cells * lo} treated geos are asked for but only {eligible} geos are not excluded"
        )
    return lo, min(hi, G - min_controls)


def n_combinations(n_free: int, sizes: Sequence[int]) -> int:
    """How many treated sets an exhaustive search would evaluate."""
    return sum(math.comb(n_free, k) for k in sizes if 0 <= k <= n_free)


def exhaustive(
    free: Sequence[int], forced: Sequence[int], sizes: Sequence[int]
) -> list[tuple[int, ...]]:
    """Every treated set: ``forced`` plus each combination of ``free`` of the right size."""
    out = []
    for k in sizes:
        extra = k - len(forced)
        if extra < 0 or extra > len(free):
            continue
        for combo in itertools.combinations(free, extra):
            out.append(tuple(sorted((*forced, *combo))))
    return out


def matched_markets(
    S: np.ndarray, free: Sequence[int], forced: Sequence[int], sizes: Sequence[int]
) -> list[tuple[int, ...]]:
    """Each seed geo plus its most similar geos, up to each size.

    Seeds are the forced geos' aggregate (when there are any) and every free geo;
    similarity to a group is the mean similarity to its members.
    """
    free = list(free)
    out: set[tuple[int, ...]] = set()
    seeds: list[list[int]] = [[*forced, s] for s in free] if forced else [[s] for s in free]
    if forced:
        seeds.append(list(forced))
    for seed in seeds:
        group = list(dict.fromkeys(seed))
        pool = [g for g in free if g not in group]
        # Similarity of each candidate to the seed group, best first.
        order = sorted(pool, key=lambda g: -float(S[g, group].mean()))
        for k in sizes:
            extra = k - len(group)
            if extra < 0 or extra > len(order):
                continue
            out.add(tuple(sorted(group + order[:extra])))
    return sorted(out)


def stratified(
    size: np.ndarray,
    free: Sequence[int],
    forced: Sequence[int],
    sizes: Sequence[int],
    n_draws: int,
    rng: np.random.Generator,
) -> list[tuple[int, ...]]:
    """Stratified randomisation: one geo from each size stratum of the free geos."""
    free = np.asarray(free)
    out: set[tuple[int, ...]] = set()
    order = free[np.argsort(-size[free], kind="stable")]
    for k in sizes:
        extra = k - len(forced)
        if extra < 1 or extra > len(free):
            continue
        strata = np.array_split(order, extra)
        for _ in range(n_draws):
            pick = [int(rng.choice(s)) for s in strata]
            out.add(tuple(sorted((*forced, *pick))))
    return sorted(out)


def generate_candidates(
    Y: np.ndarray,
    geos: Sequence[str],
    *,
    n_treated: tuple[int, int],
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    method: str = "auto",
    max_exhaustive: int = 400,
    n_random: int = 10,
    seed: int = 0,
) -> list[tuple[str, ...]]:
    """Candidate treated sets under the constraints, as tuples of geo ids.

    Parameters
    ----------
    Y : ndarray (T, G)
        Pre-period outcomes, one column per geo of ``geos``.
    geos : sequence of str
    n_treated : (int, int)
        Smallest and largest treated set.
    include, exclude : sequence of str
        Geos in every set, and geos in none.
    method : {"auto", "exhaustive", "matched", "stratified", "all"}, default="auto"
        ``auto`` enumerates every set when there are at most ``max_exhaustive``
        of them, and otherwise combines matched markets and stratified draws.
    max_exhaustive : int, default=400
    n_random : int, default=10
        Stratified draws per set size.
    seed : int, default=0

    Returns
    -------
    list of tuple of str
        Distinct sets, each sorted, in a deterministic order.
    """
    if method not in ("auto", "exhaustive", "matched", "stratified", "all"):
        raise ConfigError(
            f"candidate method '{method}' is unknown (use auto, exhaustive, matched, stratified or all)"
        )
    index = {g: i for i, g in enumerate(geos)}
    lo, hi = check_constraints(geos, n_treated, include, exclude)
    forced = sorted(index[g] for g in include)
    banned = {index[g] for g in exclude}
    free = [i for i in range(len(geos)) if i not in banned and i not in forced]
    sizes = [k for k in range(max(lo, len(forced)), hi + 1) if k - len(forced) <= len(free)]
    if not sizes:
        raise ConfigError(
            f"no treated set of {lo}..{hi} geos can be formed from the geos not excluded"
        )
    total = n_combinations(len(free), [k - len(forced) for k in sizes])
    sets: set[tuple[int, ...]] = set()
    if method == "exhaustive" or (method == "auto" and total <= max_exhaustive):
        sets.update(exhaustive(free, forced, sizes))
    else:
        rng = np.random.default_rng(seed)
        if method in ("auto", "matched", "all"):
            sets.update(matched_markets(similarity_matrix(Y), free, forced, sizes))
        if method in ("auto", "stratified", "all"):
            sets.update(stratified(Y.mean(axis=0), free, forced, sizes, n_random, rng))
    sets = {s for s in sets if lo <= len(s) <= hi}
    return [tuple(geos[i] for i in s) for s in sorted(sets, key=lambda s: (len(s), s))]


def neighbours(
    treated: Sequence[str],
    geos: Sequence[str],
    *,
    n_treated: tuple[int, int],
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    similarity: np.ndarray | None = None,
    n_similar: int = 8,
) -> list[tuple[str, ...]]:
    """Treated sets one move from ``treated``: swap, add or drop one geo (greedy local search).

    Included geos are never dropped and excluded geos never added. With a
    ``similarity`` matrix (rows and columns in the order of ``geos``), a geo is
    swapped only for one of its ``n_similar`` most similar free geos, and only
    the ``n_similar`` free geos most similar to the set are added, which keeps
    the neighbourhood small for large panels.
    """
    current = set(treated)
    pos = {g: i for i, g in enumerate(geos)}
    free = [g for g in geos if g not in current and g not in set(exclude)]
    movable = [g for g in treated if g not in set(include)]
    lo, hi = n_treated

    def nearest(to: Sequence[str]) -> list[str]:
        if similarity is None:
            return free
        score = similarity[np.ix_([pos[g] for g in to], [pos[h] for h in free])].mean(axis=0)
        return [free[i] for i in np.argsort(-score, kind="stable")[:n_similar]]

    out: set[tuple[str, ...]] = set()
    for g in movable:
        for h in nearest([g]):
            out.add(tuple(sorted((current - {g}) | {h})))
        if len(current) - 1 >= lo:
            out.add(tuple(sorted(current - {g})))
    if len(current) + 1 <= hi:
        for h in nearest(list(treated)):
            out.add(tuple(sorted(current | {h})))
    return sorted(out, key=lambda s: (len(s), s))
