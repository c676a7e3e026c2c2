r"""Geo-based regression (GBR; Vaver & Koehler 2011): one regression across geos.

Every geo :math:`i` contributes its test-period response :math:`y_{1,i}`, its
pre-period response :math:`y_{0,i}` and the change :math:`\delta_i` of the
advertising the test made there (its spend change, or a treatment indicator):

.. math:: y_{1,i} = \beta_0 + \beta_1 y_{0,i} + \beta_2 \delta_i + \varepsilon_i,
          \qquad \operatorname{Var}(\varepsilon_i) \propto y_{0,i},

fitted by weighted least squares with weights :math:`1/y_{0,i}` (bigger geos
are noisier in absolute terms). :math:`\beta_2` is the return on the spend
change (iROAS) or, with an indicator, the effect per treated geo; its
interval and p-value are Student's t with :math:`n - 3` degrees of freedom,
as the paper. The geos are the units: the model asks for enough of them (at
least 6 here) and, being a cross-section, is not affected by the
autocorrelation of the series within the test window.

References
----------
Vaver, J. & Koehler, J. (2011). Measuring ad effectiveness using geo
experiments. Google Inc.
"""

from __future__ import annotations

from dataclasses import replace
from numbers import Real

import numpy as np
from scipy import stats

from causal.base import BaseEstimator, EstimatorTags, Interval, check_is_fitted
from causal.errors import DataError
from causal.inference import check_confidence

MIN_GEOS = 6


class GeoBasedRegression(BaseEstimator):
    """GBR: weighted regression of test-period on pre-period response and the spend change.

    Parameters
    ----------
    confidence : float, default=0.9
        Level of :meth:`conf_int` when none is asked for.

    Attributes
    ----------
    coef_ : ndarray (3,)
        :math:`\\beta_0, \\beta_1, \\beta_2`.
    bse_ : ndarray (3,)
        Their standard errors.
    df_ : int
        Residual degrees of freedom (n - 3).
    estimate_ : float
        :math:`\\beta_2`.
    n_geos_ : int

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y0 = rng.uniform(100, 1000, 20)
    >>> delta = np.r_[np.full(10, 50.0), np.zeros(10)]
    >>> y1 = 5 + 1.1 * y0 + 2.0 * delta + rng.normal(0, 1, 20) * np.sqrt(y0)
    >>> gbr = GeoBasedRegression().fit(y1, y0, delta)
    >>> bool(abs(gbr.estimate_ - 2.0) < 0.5)
    True
    """

    _parameter_constraints = {"confidence": [Interval(Real, 0, 1, closed="neither")]}

    def __init__(self, *, confidence: float = 0.9) -> None:
        self.confidence = confidence

    def __liftlab_tags__(self) -> EstimatorTags:
        return replace(super().__liftlab_tags__(), input="geos", min_pre_periods=1)

    def fit(self, y_test, y_pre, delta) -> GeoBasedRegression:
        """Fit on one value per geo: test-period response, pre-period response, spend change."""
        self._validate_params()
        y1, y0, d = (np.asarray(a, float).ravel() for a in (y_test, y_pre, delta))
        if not len(y1) == len(y0) == len(d):
            raise DataError(
                f"GeoBasedRegression: {len(y1)} test responses, {len(y0)} pre-period responses, "
                f"{len(d)} spend changes"
            )
        if len(y1) < MIN_GEOS:
            raise DataError(f"GeoBasedRegression: needs at least {MIN_GEOS} geos, got {len(y1)}")
        if not np.isfinite(np.r_[y1, y0, d]).all():
            raise DataError(
                "GeoBasedRegression: responses or spend changes contain NaN or infinite values"
            )
        if np.any(y0 <= 0):
            raise DataError(
                "GeoBasedRegression: every geo needs a positive pre-period response (the weights are "
                "1 / pre-period response)"
            )
        if np.ptp(d) == 0:
            raise DataError(
                "GeoBasedRegression: the spend change is the same in every geo: nothing to estimate"
            )
        X = np.column_stack([np.ones_like(y0), y0, d])
        w = 1.0 / y0
        sw = np.sqrt(w)
        Xw, yw = X * sw[:, None], y1 * sw
        coef, *_ = np.linalg.lstsq(Xw, yw, rcond=None)
        resid = yw - Xw @ coef
        self.df_ = len(y1) - 3
        sigma2 = float(resid @ resid) / self.df_
        cov = sigma2 * np.linalg.pinv(Xw.T @ Xw)
        self.coef_, self.bse_ = coef, np.sqrt(np.clip(np.diag(cov), 0.0, None))
        self.estimate_ = float(coef[2])
        self.n_geos_ = len(y1)
        return self

    def conf_int(self, confidence: float | None = None) -> tuple[float, float]:
        """Student-t interval of :math:`\\beta_2` at ``confidence`` (default: the estimator's)."""
        check_is_fitted(self, "estimate_")
        confidence = check_confidence(self, self.confidence if confidence is None else confidence)
        q = float(stats.t.ppf(0.5 + 0.5 * confidence, self.df_))
        return self.estimate_ - q * float(self.bse_[2]), self.estimate_ + q * float(self.bse_[2])

    def p_value(self) -> float:
        """Two-sided t-test of :math:`\\beta_2 = 0` (the same test as the interval)."""
        check_is_fitted(self, "estimate_")
        se = float(self.bse_[2])
        if se <= 0:
            return 1.0 if self.estimate_ == 0 else 0.0
        return float(2 * stats.t.sf(abs(self.estimate_) / se, self.df_))
