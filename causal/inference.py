"""What an estimator's own inference returns, and the placebo helpers the estimators share.

:class:`EffectInference` is the one result of ``effect_inference`` (tbr, did, sdid, bsts) and of
the readout's conformal test (:mod:`causal.conformal`). The placebo-in-space helpers serve every
estimator that refers its statistic to groups of control geos read out as if treated (tbr, did,
sdid, bsts): they live here, not in one estimator's module, so no estimator imports another.
"""

from __future__ import annotations

from itertools import combinations
from math import comb
from typing import Any

import numpy as np

from causal.errors import ConfigError, DataError


class EffectInference:
    """What an estimator with its own inference reports about the test-period effect.

    All quantities are on the treated *average* series (mean over treated geos),
    summed over the test periods; the readout scales them to totals.

    Attributes
    ----------
    effect : float
        Sum over the test of (observed - counterfactual).
    effect_ci : tuple of float
        Interval at the requested confidence.
    p_value : float
        Two-sided, for no effect.
    counterfactual_lo, counterfactual_hi : ndarray (T1,)
        Pointwise band of the counterfactual at the same confidence.
    method : str
        One line naming the inference (e.g. "posterior predictive, 1000 draws").
    """

    def __init__(self, effect, effect_ci, p_value, counterfactual_lo, counterfactual_hi, method):
        self.effect = float(effect)
        self.effect_ci = (float(effect_ci[0]), float(effect_ci[1]))
        self.p_value = float(p_value)
        self.counterfactual_lo = np.asarray(counterfactual_lo, dtype=float)
        self.counterfactual_hi = np.asarray(counterfactual_hi, dtype=float)
        self.method = method

    def __repr__(self) -> str:
        return (
            f"EffectInference(effect={self.effect:.4g}, effect_ci={self.effect_ci}, "
            f"p_value={self.p_value:.3g}, method={self.method!r})"
        )


def treated_post_average(estimator: Any, Y_treated_post: np.ndarray) -> np.ndarray:
    """The treated average over the test as a (T1,) array, checked against the fit.

    Shared by the estimators with their own inference (tbr, did, sdid, bsts): they all
    report on the treated *average* series.
    """
    from causal.base import check_is_fitted  # base imports this module

    check_is_fitted(estimator)
    name = type(estimator).__name__
    y = np.asarray(Y_treated_post, dtype=float)
    if y.ndim == 2:
        if y.shape[1] != estimator.n_treated_:
            raise DataError(
                f"{name}.effect_inference: Y_treated_post has {y.shape[1]} treated columns, "
                f"fit had {estimator.n_treated_}"
            )
        y = y.mean(axis=1)
    if y.ndim != 1 or y.shape[0] != estimator.counterfactual_post_.shape[0]:
        raise DataError(
            f"{name}.effect_inference: Y_treated_post has {y.shape[0] if y.ndim else 0} periods, "
            f"the fitted test period has {estimator.counterfactual_post_.shape[0]}"
        )
    if not np.isfinite(y).all():
        raise DataError(
            f"{name}.effect_inference: treated test-period outcomes contain NaN or infinite values"
        )
    return y


def check_confidence(estimator: Any, confidence: float) -> float:
    """``confidence`` as a float in (0, 1), or a :class:`ConfigError` naming the estimator."""
    confidence = float(confidence)
    if not 0.0 < confidence < 1.0:
        raise ConfigError(
            f"{type(estimator).__name__}.effect_inference: confidence must be in (0, 1), "
            f"got {confidence}"
        )
    return confidence


def placebo_groups(J: int, n1: int, n_placebo: int, seed: int) -> list[list[int]]:
    """Groups of ``n1`` of the ``J`` control geos read out as if treated: every group when
    there are at most ``n_placebo`` of them, otherwise ``n_placebo`` random draws from ``seed``.

    >>> placebo_groups(3, 2, 10, seed=0)
    [[0, 1], [0, 2], [1, 2]]
    """
    if comb(J, n1) <= n_placebo:
        return [list(g) for g in combinations(range(J), n1)]
    rng = np.random.default_rng(seed)
    return [list(rng.choice(J, n1, replace=False)) for _ in range(int(n_placebo))]


def placebo_reference(z: np.ndarray, alpha: float, statistic: float) -> tuple[float, float]:
    """The ``1 - alpha`` quantile of ``|z|`` (the interval's multiplier) and the placebo p-value of
    ``statistic``: the share of placebo statistics at least as large, the real one counted too.

    ``z`` holds the placebos' statistics on the scale of ``statistic`` (tbr, bsts, sdid);
    ``alpha`` is the test's level (one minus the interval's confidence).

    >>> placebo_reference(np.array([1.0, 2.0, 3.0]), 0.5, 2.5)
    (2.0, 0.5)
    """
    q = float(np.quantile(np.abs(z), 1 - alpha))
    p = float((1 + np.sum(np.abs(z) >= statistic)) / (1 + z.size))
    return q, p
