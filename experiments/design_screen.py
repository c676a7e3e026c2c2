r"""A vectorised first screen of many candidate treated sets, before the readout is simulated.

Simulating the readout (:mod:`experiments.power`) costs a fit per candidate and
window; for tens of thousands of candidates that is too slow, and most of them
are poor. This screen scores every candidate on every search window at once
with the simplest counterfactual that shares the readout's error structure:
time-based regression of the treated geos' average on the donors' average
(Kerman, Wang & Vaver 2017), fitted on each window's pre-period.

What does not change across candidates and windows is computed once: the
treated and donor averages of all candidates are one matrix product
:math:`Y M` (periods x candidates), and the least-squares fits on every
prefix of the history come from cumulative sums of :math:`x, y, x^2, xy`, so
each window's fit and its prediction error over the test are a few array
operations over all candidates. The score is a normal-approximation MDE,

.. math:: \widehat{\mathrm{MDE}} = (z_{1-\alpha/2} + z_{\pi})
          \sqrt{\overline{e^2}} / \bar b,

with :math:`e` the test-window prediction errors and :math:`b` the treated
totals over the windows. Only the best-scoring candidates go on to the
readout's simulation, which decides; the screen only orders.

Candidates are drawn by stratified randomisation (Vaver & Koehler 2011):
geos sorted by size into strata, each candidate taking from every stratum
its share of the set's size, as meridian-geox's stratified sampling does.

References
----------
Kerman, J., Wang, P. & Vaver, J. (2017). Estimating ad effectiveness using geo
experiments in a time-based regression framework. Google Inc.
Vaver, J. & Koehler, J. (2011). Measuring ad effectiveness using geo experiments. Google Inc.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

from causal.errors import ConfigError


def stratified_masks(
    size: np.ndarray,
    n: int,
    n_treated: tuple[int, int],
    *,
    include: Sequence[int] = (),
    exclude: Sequence[int] = (),
    n_strata: int = 4,
    seed: int = 0,
) -> np.ndarray:
    """``n`` distinct treated sets as a boolean (n, G) array, stratified by geo size.

    Each set's size is drawn uniformly from ``n_treated``; the free geos
    (neither included nor excluded) are cut into ``n_strata`` strata by
    ``size``, and a set of ``k`` geos takes from each stratum its share of
    ``k - len(include)`` (largest remainders), at random within the stratum.
    Included geos are in every set, excluded geos in none. Duplicates are
    dropped, so fewer than ``n`` sets may come back.
    """
    G = len(size)
    rng = np.random.default_rng(seed)
    forced = np.asarray(sorted(set(int(i) for i in include)), dtype=int)
    banned = set(int(i) for i in exclude)
    free = np.array(
        [i for i in range(G) if i not in banned and i not in set(forced.tolist())], dtype=int
    )
    lo, hi = int(n_treated[0]), int(n_treated[1])
    extra_lo, extra_hi = max(lo - len(forced), 0), min(hi - len(forced), len(free))
    if extra_hi < extra_lo or extra_hi < 0:
        raise ConfigError(
            f"no treated set of {lo}..{hi} geos can be formed from the geos not excluded"
        )
    order = free[np.argsort(-size[free], kind="stable")]
    strata = [s for s in np.array_split(order, min(n_strata, max(len(free), 1))) if len(s)]
    share = np.array([len(s) for s in strata], dtype=float) / max(len(free), 1)
    k = rng.integers(extra_lo, extra_hi + 1, size=n)
    # Quotas by largest remainder: each stratum gets its share of k, the sum is exactly k.
    raw = k[:, None] * share[None, :]
    quota = np.floor(raw).astype(int)
    short = k - quota.sum(axis=1)
    rem_rank = np.argsort(np.argsort(-(raw - quota), axis=1, kind="stable"), axis=1)
    quota += rem_rank < short[:, None]
    masks = np.zeros((n, G), dtype=bool)
    for j, s in enumerate(strata):
        # A random rank of every geo within its stratum, per candidate: the first quota ranks are treated.
        ranks = np.argsort(rng.random((n, len(s))), axis=1).argsort(axis=1)
        masks[:, s] = ranks < quota[:, [j]]
    if len(forced):
        masks[:, forced] = True
    # Distinct sets, first occurrence kept (rows packed to bytes: np.unique on bool rows is slow).
    packed = np.packbits(masks, axis=1)
    _, first = np.unique(
        packed.view(np.dtype((np.void, packed.shape[1]))).ravel(), return_index=True
    )
    return masks[np.sort(first)]


def screen_mde(
    Y: np.ndarray,
    masks: np.ndarray,
    starts: Sequence[int],
    duration: int,
    *,
    alpha: float = 0.1,
    power_target: float = 0.8,
    chunk: int = 8192,
) -> np.ndarray:
    """Normal-approximation MDE of every candidate over the windows (module docstring); shape (n,).

    Parameters
    ----------
    Y : ndarray (T, G)
        Outcomes, periods x geos.
    masks : ndarray (n, G) of bool
        Treated geos of each candidate; every other geo is a donor.
    starts : sequence of int
        First period of each window; its pre-period is every period before it.
    duration : int
        Test length in periods.
    alpha, power_target : float
    chunk : int, default=8192
        Candidates per block (bounds memory: a block holds a few (T, chunk) arrays).

    Returns
    -------
    ndarray (n,)
        Relative MDE; ``inf`` where a window's treated total is not positive.
    """
    Y = np.asarray(Y, dtype=float)
    starts = np.asarray(starts, dtype=int)
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power_target)
    out = np.empty(len(masks))
    for a in range(0, len(masks), chunk):
        M = masks[a : a + chunk].T.astype(float)  # (G, c)
        nt = M.sum(axis=0)
        y = (Y @ M) / np.maximum(nt, 1.0)
        x = (Y @ (1.0 - M)) / np.maximum(Y.shape[1] - nt, 1.0)
        out[a : a + chunk] = _tbr_window_mde(y, x, starts, duration, z)
    return out


def _tbr_window_mde(
    y: np.ndarray, x: np.ndarray, starts: np.ndarray, d: int, z: float
) -> np.ndarray:
    """Per candidate (columns of y, x): z * RMS test-window prediction error / mean treated total."""
    zero = np.zeros((1, y.shape[1]))
    cx, cy = np.vstack([zero, np.cumsum(x, 0)]), np.vstack([zero, np.cumsum(y, 0)])
    cxx, cxy = np.vstack([zero, np.cumsum(x * x, 0)]), np.vstack([zero, np.cumsum(x * y, 0)])
    n = starts.astype(float)[:, None]  # pre-period length of each window
    sx, sy, sxx, sxy = cx[starts], cy[starts], cxx[starts], cxy[starts]  # (W, c)
    vxx = sxx - sx * sx / n
    beta = np.where(
        vxx > 1e-12 * np.maximum(sxx, 1e-300),
        (sxy - sx * sy / n) / np.where(vxx > 0, vxx, 1.0),
        0.0,
    )
    a0 = (sy - beta * sx) / n
    tx, ty = cx[starts + d] - sx, cy[starts + d] - sy  # test-window sums
    err = ty - (a0 * d + beta * tx)
    base = ty.mean(axis=0)
    # The few search windows overlap heavily; the in-sample errors of one fit over the history they
    # span, summed over every window of d periods, steady the score (the best of many candidates
    # on a noisy score is the one whose noise was under-estimated).
    E = int(starts.max()) + d
    m = float(E)
    vxx_all = cxx[E] - cx[E] ** 2 / m
    b_all = np.where(
        vxx_all > 0, (cxy[E] - cx[E] * cy[E] / m) / np.where(vxx_all > 0, vxx_all, 1.0), 0.0
    )
    a_all = (cy[E] - b_all * cx[E]) / m
    r = np.vstack([zero, np.cumsum(y[:E] - a_all - b_all * x[:E], 0)])
    roll = r[d:] - r[:-d]
    rms = np.sqrt(0.5 * np.mean(err**2, axis=0) + 0.5 * np.mean(roll**2, axis=0))
    return np.where(base > 0, z * rms / np.where(base > 0, base, 1.0), np.inf)
