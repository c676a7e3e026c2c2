r"""Trimmed Match (Chen & Au 2022): a robust iROAS estimator for matched-pair geo experiments.

Each pair :math:`i` of geos (one treated, one control) gives the test-period
differences :math:`\Delta R_i` (response, treated minus control) and
:math:`\Delta S_i` (spend). The model is :math:`\Delta R_i = \theta\,\Delta S_i
+ \varepsilon_i` with :math:`\varepsilon_i` symmetric about zero; the estimate
of the incremental return on spend :math:`\theta` solves

.. math:: \operatorname{TrimmedMean}_\lambda\{\Delta R_i - \theta\,\Delta S_i\} = 0,

the trimmed mean at rate :math:`\lambda` (the :math:`\lceil \lambda n\rceil`
smallest and largest residuals dropped), so a few pairs that moved for other
reasons cannot drag the estimate. The residuals' order only changes at the
pairwise ratios :math:`\theta_{ij} = (\Delta R_j - \Delta R_i)/(\Delta S_j - \Delta S_i)`;
between two of them the trimmed set is fixed and the equation is linear, so
every root is found exactly (the paper's Algorithm 1); with several roots the
one with the smallest trimmed symmetric norm is taken.

Trim rate: the paper's data-driven rule (and ``trimmed_match``'s): every rate
:math:`k/n \le \lambda_{max}` is tried, with the standard error of eq. (8.2)
(winsorised residuals over the trimmed mean spend difference), and the
smallest rate whose standard error is within :math:`1 + 0.25/\sqrt n` of the
smallest one is chosen. Interval: the values of :math:`\theta` at which the
studentised trimmed mean of the residuals is within the normal quantile (the
test inverted, as the paper; quadratic in :math:`\theta` between breakpoints,
solved exactly), falling back to :math:`\hat\theta \pm 3 z\,\mathrm{se}` when
that set is unbounded in practice (wider than :math:`10^6` standard errors).

Parity: ``tests/test_trimmed_match.py`` reproduces the estimates, standard
errors, trim rates and intervals of Google's ``trimmed_match`` unit tests
(``trimmed_match/estimator_test.py``), to three decimals.

References
----------
Chen, A. & Au, T. C. (2022). Robust causal inference for incremental return on
ad spend with randomized paired geo experiments. Annals of Applied Statistics
16(1), 1-20 (arXiv:1908.02922).
"""

from __future__ import annotations

import math
from dataclasses import replace
from numbers import Real

import numpy as np
from scipy import stats

from causal.base import NON_NEGATIVE, BaseEstimator, EstimatorTags, Interval, check_is_fitted
from causal.errors import ConfigError, DataError
from causal.inference import check_confidence

# trimmed_match's constants: the largest trim rate, the bound on iROAS, the width
# (in standard errors) above which the inverted test is replaced by a normal interval.
MAX_TRIM_RATE = 0.30
BOUND_IROAS = 1e10
EXTREME_CI_WIDTH = 1e6
NORMAL_MULTIPLIER = 3.0
_PERTURBATION = 2.0**-40


def _breakpoints(R: np.ndarray, S: np.ndarray) -> np.ndarray:
    """Sorted distinct pairwise ratios: where the residuals' order can change."""
    i, j = np.triu_indices(len(R), 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        th = (R[j] - R[i]) / (S[j] - S[i])
    th = th[np.isfinite(th) & (np.abs(th) < BOUND_IROAS)]
    return np.unique(th)


def _interval_points(edges: np.ndarray) -> np.ndarray:
    """One point inside each interval between consecutive edges (edges include -/+BOUND)."""
    return 0.5 * (edges[:-1] + edges[1:])


def _orders(R: np.ndarray, S: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Indices that sort the residuals R - x S at each point x: (K, n)."""
    return np.argsort(R[None, :] - points[:, None] * S[None, :], axis=1, kind="stable")


def trimmed_symmetric_norm(residuals: np.ndarray, trim_rate: float) -> float:
    """Mean of |r_(k) + r_(n-1-k)| over the untrimmed order statistics (trimmed_match's tie-break)."""
    r = np.sort(np.asarray(residuals, float))
    n = len(r)
    k = math.ceil(n * trim_rate)
    body = np.arange(k, n - k)
    return float(np.abs(r[body] + r[n - 1 - body]).sum() / (n - 2 * k))


def zeros_of_trimmed_mean(R: np.ndarray, S: np.ndarray, trim_rate: float) -> np.ndarray:
    """Every root of TrimmedMean(R - theta S) = 0 at the given trim rate."""
    n = len(R)
    n1 = math.ceil(trim_rate * n)
    if n1 == 0:
        return np.array([R.sum() / S.sum()])
    if 2 * n1 >= n:
        raise DataError(f"TrimmedMatch: trimming {n1} pairs from each side of {n} leaves none")
    edges = np.concatenate([[-BOUND_IROAS], _breakpoints(R, S), [BOUND_IROAS]])
    orders = _orders(R, S, _interval_points(edges))
    body = orders[:, n1 : n - n1]
    with np.errstate(divide="ignore", invalid="ignore"):
        theta = R[body].sum(axis=1) / S[body].sum(axis=1)
    ok = np.isfinite(theta) & (theta >= edges[:-1]) & (theta <= edges[1:])
    return np.unique(theta[ok])


def trimmed_match_std_error(R: np.ndarray, S: np.ndarray, trim_rate: float, iroas: float) -> float:
    """Standard error of the estimate at a trim rate (Chen & Au, eq. 8.2)."""
    n = len(R)
    res = R - S * iroas
    order = np.argsort(res, kind="stable")
    res, dc = res[order], S[order]
    n1 = math.ceil(trim_rate * n)
    n2 = n - 1 - n1
    ssr = n1 * (res[n1] ** 2 + res[n2] ** 2) + float((res[n1 : n2 + 1] ** 2).sum())
    tr_mean_dc = float(dc[n1 : n2 + 1].sum()) / n
    return float(math.sqrt(ssr / (tr_mean_dc**2 * n) / n))


def _solve_quadratic(
    a: float, b: float, c: float, lo: float, hi: float
) -> tuple[float, float] | None:
    """The part of [lo, hi] where a x^2 - 2 b x + c >= 0 (trimmed_match's QuadraticInequality.Solver)."""
    lo, hi = max(-BOUND_IROAS, lo), min(BOUND_IROAS, hi)

    def f(x):
        return a * x * x - 2 * b * x + c

    f1, f2 = f(lo), f(hi)
    if f1 >= 0 and f2 >= 0:
        return lo, hi
    if f1 >= 0 > f2:
        return lo, (0.5 * c / b) if a == 0 else (b - math.sqrt(max(b * b - a * c, 0.0))) / a
    if f1 < 0 <= f2:
        return ((0.5 * c / b) if a == 0 else (b + math.sqrt(max(b * b - a * c, 0.0))) / a), hi
    eps = 32 * np.finfo(float).eps
    disc = (
        0.0 if abs(b * b - a * c) <= max(eps * max(abs(b * b), abs(a * c)), eps) else b * b - a * c
    )
    if disc < 0 or a >= 0:
        return None
    center = b / a
    if lo <= center <= hi:
        shift = math.sqrt(disc) / a
        return center + shift, center - shift
    return None


def studentized_range(
    R: np.ndarray, S: np.ndarray, trim_rate: float, z: float
) -> tuple[float, float]:
    """The thetas whose residuals' studentised trimmed mean is within +-z (the inverted test)."""
    n = len(R)
    n1 = math.ceil(trim_rate * n)
    m = n - 2 * n1
    if m < 2:
        raise DataError(
            f"TrimmedMatch: fewer than 2 pairs are left after trimming {n1} from each side"
        )
    H = z * z * m / (m - 1)
    edges = np.concatenate([[-BOUND_IROAS], _breakpoints(R, S), [BOUND_IROAS]])
    orders = _orders(R, S, _interval_points(edges))
    body = orders[:, n1 : n - n1]
    left, right = orders[:, n1], orders[:, n - 1 - n1]
    X1, Y1 = S[body].sum(axis=1), R[body].sum(axis=1)
    X2 = (S[body] ** 2).sum(axis=1) + n1 * (S[left] ** 2 + S[right] ** 2)
    Y2 = (R[body] ** 2).sum(axis=1) + n1 * (R[left] ** 2 + R[right] ** 2)
    Z = (R[body] * S[body]).sum(axis=1) + n1 * (R[left] * S[left] + R[right] * S[right])
    X1w, Y1w = X1 + n1 * (S[left] + S[right]), Y1 + n1 * (R[left] + R[right])
    a = H * (X2 - X1w**2 / n) - X1**2
    b = H * (Z - X1w * Y1w / n) - X1 * Y1
    c = H * (Y2 - Y1w**2 / n) - Y1**2
    lows, highs = [], []
    for k in range(len(a)):
        part = _solve_quadratic(
            float(a[k]), float(b[k]), float(c[k]), float(edges[k]), float(edges[k + 1])
        )
        if part is not None:
            lows.append(part[0])
            highs.append(part[1])
    if not lows:
        return float("nan"), float("nan")
    return float(min(lows)), float(max(highs))


class TrimmedMatch(BaseEstimator):
    """Trimmed Match on matched pairs: iROAS, its standard error, trim rate and interval.

    Parameters
    ----------
    max_trim_rate : float, default=0.25
        Largest trim rate tried (capped at ``min(0.5 - 1/n, 0.30)`` as trimmed_match does).
    trim_rate : float or None, default=None
        A fixed trim rate in ``[0, max_trim_rate]``; ``None`` chooses it by the paper's rule.
    confidence : float, default=0.9
        Level of :meth:`conf_int` when none is asked for.

    Attributes
    ----------
    estimate_ : float
        Incremental response per unit of incremental spend.
    std_error_ : float
    trim_rate_ : float
    candidates_ : list of (trim_rate, estimate, std_error)
        Every trim rate tried.
    epsilons_ : ndarray (n,)
        ``delta_response - estimate * delta_spend`` per pair (input order).
    trimmed_ : list of int
        Pairs (input positions) trimmed at the chosen rate.
    n_pairs_ : int

    Examples
    --------
    >>> tm = TrimmedMatch().fit([1.0, 10.0, 3.0, 8.0], [1.0, 5.0, 2.0, 5.0])
    >>> round(tm.estimate_, 3), tm.trim_rate_, [round(x, 3) for x in tm.conf_int(0.9)]
    (1.571, 0.25, [-29.374, 1.619])
    """

    _parameter_constraints = {
        "max_trim_rate": [NON_NEGATIVE],
        "trim_rate": [None, NON_NEGATIVE],
        "confidence": [Interval(Real, 0, 1, closed="neither")],
    }

    def __init__(
        self,
        *,
        max_trim_rate: float = 0.25,
        trim_rate: float | None = None,
        confidence: float = 0.9,
    ) -> None:
        self.max_trim_rate = max_trim_rate
        self.trim_rate = trim_rate
        self.confidence = confidence

    def __liftlab_tags__(self) -> EstimatorTags:
        return replace(super().__liftlab_tags__(), input="pairs", min_pre_periods=0)

    def fit(self, delta_response, delta_spend) -> TrimmedMatch:
        """Fit on one response and one spend difference (treated minus control) per pair."""
        self._validate_params()
        R0 = np.asarray(delta_response, float).ravel()
        S0 = np.asarray(delta_spend, float).ravel()
        if R0.shape != S0.shape:
            raise DataError(
                f"TrimmedMatch: {len(R0)} response differences but {len(S0)} spend differences"
            )
        if len(R0) < 3:
            raise DataError(f"TrimmedMatch: needs at least 3 pairs, got {len(R0)}")
        if not (np.isfinite(R0).all() and np.isfinite(S0).all()):
            raise DataError(
                "TrimmedMatch: response or spend differences contain NaN or infinite values"
            )
        if np.max(np.abs(S0)) < 1e-10:
            raise DataError(
                "TrimmedMatch: the spend differences of every pair are zero: the test did not move spend"
            )
        n = len(R0)
        R, S = self._break_ties(R0, S0)
        max_rate = min(min(0.5 - 1.0 / n, self.max_trim_rate), MAX_TRIM_RATE)
        if self.trim_rate is not None:
            if not 0 <= self.trim_rate <= max_rate:
                raise ConfigError(
                    f"TrimmedMatch: trim_rate must be in [0, {max_rate:.3f}], got {self.trim_rate}"
                )
            rates = [float(self.trim_rate)]
        else:
            rates = [i / n for i in range(math.ceil(max_rate * n) + 1) if i / n <= max_rate]
        cands = []
        for rate in rates:
            iroas = self._iroas(R, S, rate)
            cands.append((rate, iroas, trimmed_match_std_error(R, S, rate, iroas)))
        min_se = min(c[2] for c in cands)
        chosen = next(c for c in cands if c[2] <= (1 + 0.25 / math.sqrt(n)) * min_se)
        self.trim_rate_, self.estimate_, self.std_error_ = chosen
        self.candidates_ = cands
        self._R_, self._S_ = R, S
        self.epsilons_ = R0 - S0 * self.estimate_
        ranks = np.empty(n, int)
        ranks[np.argsort(self.epsilons_)] = np.arange(n)
        k = round(n * self.trim_rate_)
        self.trimmed_ = [int(i) for i in range(n) if ranks[i] < k or ranks[i] > n - k - 1]
        self.n_pairs_ = n
        return self

    @staticmethod
    def _break_ties(R: np.ndarray, S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """trimmed_match's tiny non-linear perturbation when spend differences or pairwise ratios tie."""
        n = len(R)
        ties_s = len(np.unique(S)) != n
        i, j = np.triu_indices(n, 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            th = (R[j] - R[i]) / (S[j] - S[i])
        if not ties_s and len(np.unique(th)) == len(th):
            return R, S
        pr = np.arange(n) ** 1.5
        pr = (pr - np.median(pr)) * _PERTURBATION
        ps = (np.arange(n) - n * 0.5) * _PERTURBATION if ties_s else np.zeros(n)
        tiny = np.finfo(float).tiny
        return (R + tiny) * (1 + pr), (S + tiny) * (1 + ps)

    @staticmethod
    def _iroas(R: np.ndarray, S: np.ndarray, rate: float) -> float:
        roots = zeros_of_trimmed_mean(R, S, rate)
        if roots.size == 0:
            raise DataError("TrimmedMatch: the untrimmed pairs' spend differences sum to zero")
        if roots.size == 1:
            return float(roots[0])
        norms = [trimmed_symmetric_norm(R - S * t, rate) for t in roots]
        return float(roots[int(np.argmin(norms))])

    def conf_int(self, confidence: float | None = None) -> tuple[float, float]:
        """Interval for the iROAS at ``confidence`` (default: the estimator's), by the inverted
        studentised trimmed-mean test."""
        check_is_fitted(self, "estimate_")
        confidence = check_confidence(self, self.confidence if confidence is None else confidence)
        z = float(stats.norm.ppf(0.5 + 0.5 * confidence))
        lo, hi = studentized_range(self._R_, self._S_, self.trim_rate_, z)
        if not np.isfinite([lo, hi]).all() or hi - lo > EXTREME_CI_WIDTH * self.std_error_:
            width = self.std_error_ * z * NORMAL_MULTIPLIER
            lo, hi = self.estimate_ - width, self.estimate_ + width
        return float(lo), float(hi)

    def p_value(self) -> float:
        """Two-sided p-value of no effect: the studentised trimmed mean of the responses at theta = 0."""
        check_is_fitted(self, "estimate_")
        n = self.n_pairs_
        k = math.ceil(self.trim_rate_ * n)
        r = np.sort(self._R_)
        body = r[k : n - k]
        m = len(body)
        w = np.concatenate([np.full(k, r[k]), body, np.full(k, r[n - 1 - k])])
        ssw = float(((w - w.mean()) ** 2).sum())
        if ssw <= 0:
            return 1.0 if body.sum() == 0 else 0.0
        t = (body.sum() / m) / math.sqrt(ssw / m / (m - 1))
        return float(2 * stats.norm.sf(abs(t)))
