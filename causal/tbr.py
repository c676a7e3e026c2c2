r"""Time-based regression (TBR) of the treated aggregate on the control aggregate.

Kerman, Wang & Vaver (2017) regress the treated geos' aggregate outcome on the
control geos' aggregate over the pre-period,

.. math:: \bar y_t = a + b\,\bar x_t + \varepsilon_t, \qquad t \le T_0,

and predict the treated aggregate's counterfactual over the test period from
the controls, :math:`\hat y_t = \hat a + \hat b\,\bar x_t`. The estimand is the
cumulative causal effect on the treated aggregate over the test,

.. math:: \Delta = \sum_{t > T_0} (y_t - y_t(0)),

estimated by :math:`\hat\Delta = \sum_{t>T_0} (y_t - \hat y_t)`.

Its prediction interval accounts for the estimation error of :math:`(a, b)` and
for the sum of the test period's errors. The paper assumes independent errors;
real geo data (and :mod:`causal.world`, whose geo deviations are AR(1) with
:math:`\rho = 0.8`) are autocorrelated, which makes that interval far too narrow
for a multi-week test. Here the errors' autocovariance is modelled as ARMA(1,1)
(an AR(1) deviation plus white noise, fitted to the residuals'
autocorrelations) and propagated exactly, including the correlation between
the pre-period errors that enter :math:`(\hat a, \hat b)` and the test
period's. Even so, a residual model fitted on a few months misses shocks that
hit the treated geos' cluster and not the control aggregate (launch responses,
cluster deviations); by default the studentised error is therefore referred
to its placebo-in-space distribution (TBR run on control geos over the same
window) instead of Student's t.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy import stats

from causal.base import (
    POSITIVE_INT,
    SEED,
    CounterfactualEstimator,
    EstimatorTags,
    Options,
)
from causal.errors import DataError
from causal.inference import (
    EffectInference,
    check_confidence,
    placebo_groups,
    placebo_reference,
    treated_post_average,
)


def _acf(e: np.ndarray, max_lag: int) -> np.ndarray:
    """Sample autocorrelations r_0..r_max_lag (biased estimator, as in statsmodels' acf)."""
    e = e - e.mean()
    denom = float(e @ e)
    if denom <= 0:
        return np.r_[1.0, np.zeros(max_lag)]
    return np.array([1.0] + [float(e[k:] @ e[:-k]) / denom for k in range(1, max_lag + 1)])


def error_autocovariance(
    resid: np.ndarray, n: int, *, errors: str, dof: int
) -> tuple[np.ndarray, dict]:
    """Autocovariances gamma_0..gamma_{n-1} of the regression errors under the chosen model.

    ``iid``: gamma_k = s^2 [k = 0]. ``ar1``: gamma_k = s^2 rho^k with rho the
    lag-one autocorrelation. ``arma11``: gamma_0 = s^2, gamma_k = s^2 r_1 phi^(k-1)
    for k >= 1, phi fitted by least squares to the residual autocorrelations at
    lags 1..L; this is the autocovariance of an AR(1) deviation plus white noise,
    which is what a geo's deviation plus its count noise looks like.
    """
    s2 = float(resid @ resid) / max(dof, 1)
    k = np.arange(n)
    info: dict = {"sigma2": s2}
    if errors == "iid" or len(resid) < 4:
        gamma = np.where(k == 0, s2, 0.0)
        return gamma, info
    max_lag = int(min(max(2, len(resid) // 4), 30))
    r = _acf(resid, max_lag)
    r1 = float(np.clip(r[1], 0.0, 0.99))
    if errors == "ar1":
        info["rho"] = r1
        return s2 * r1**k, info
    # arma11: decay phi of the autocorrelations after lag one, on a fine grid
    # (a closed form r2/r1 is too noisy on a few dozen residuals).
    phi_grid = np.linspace(0.0, 0.99, 100)
    lags = np.arange(1, max_lag + 1)
    fits = r1 * phi_grid[:, None] ** (lags[None, :] - 1)
    phi = float(phi_grid[np.argmin(((fits - r[1:][None, :]) ** 2).sum(axis=1))]) if r1 > 0 else 0.0
    info.update(r1=r1, phi=phi)
    gamma = np.where(k == 0, s2, s2 * r1 * phi ** np.maximum(k - 1, 0))
    return gamma, info


def _tbr_core(y: np.ndarray, x0: np.ndarray, x1: np.ndarray, errors: str):
    """OLS of y on [1, x0]; counterfactuals and the covariance of the test's prediction errors."""
    Z0 = np.column_stack([np.ones_like(x0), x0])
    Z1 = np.column_stack([np.ones_like(x1), x1])
    coef, *_ = np.linalg.lstsq(Z0, y, rcond=None)
    T0, T1 = len(y), len(x1)
    cf0, cf1 = Z0 @ coef, Z1 @ coef
    resid = y - cf0
    gamma, info = error_autocovariance(resid, T0 + T1, errors=errors, dof=T0 - 2)
    # Toeplitz covariance of the errors over pre + test periods; the test's
    # prediction errors are A' eps with A = [Z0 (Z0'Z0)^-1 Z1'; -I].
    idx = np.arange(T0 + T1)
    omega = gamma[np.abs(idx[:, None] - idx[None, :])]
    A = np.vstack([Z0 @ np.linalg.solve(Z0.T @ Z0, Z1.T), -np.eye(T1)])
    cov = A.T @ omega @ A
    return coef, cf0, cf1, resid, 0.5 * (cov + cov.T), info


def _tbr_cumulative(
    y: np.ndarray, x0: np.ndarray, x1: np.ndarray, y1: np.ndarray, errors: str
) -> tuple[float, float]:
    """Cumulative test error of TBR and its analytic sd; the sum only, in O(T^2) (placebo loops)."""
    Z0 = np.column_stack([np.ones_like(x0), x0])
    coef, *_ = np.linalg.lstsq(Z0, y, rcond=None)
    T0, T1 = len(y), len(x1)
    resid = y - Z0 @ coef
    gamma, _ = error_autocovariance(resid, T0 + T1, errors=errors, dof=T0 - 2)
    # total error = b' eps_pre - 1' eps_post with b = Z0 (Z0'Z0)^-1 Z1' 1
    b = Z0 @ np.linalg.solve(Z0.T @ Z0, np.array([T1, x1.sum()]))
    v = np.r_[b, -np.ones(T1)]
    idx = np.arange(T0 + T1)
    var = float(v @ (gamma[np.abs(idx[:, None] - idx[None, :])] @ v))
    err = float((y1 - (coef[0] + coef[1] * x1)).sum())
    return err, float(np.sqrt(max(var, 0.0)))


class TimeBasedRegression(CounterfactualEstimator):
    r"""Time-based regression (Kerman, Wang & Vaver 2017) with autocorrelation-aware intervals.

    Estimand: the cumulative effect of the treatment on the treated geos'
    average outcome over the test period,
    :math:`\Delta = \sum_{t>T_0} (\bar y_t - \bar y_t(0))`, with the
    counterfactual :math:`\bar y_t(0) = a + b\,\bar x_t` learnt by OLS of the
    treated average :math:`\bar y_t` on the control average :math:`\bar x_t`
    over the pre-period.

    Parameters
    ----------
    errors : {"arma11", "ar1", "iid"}, default="arma11"
        Model of the regression errors' autocovariance used for the intervals.
        ``iid`` is the published TBR interval (independent errors); ``ar1``
        uses the residuals' lag-one autocorrelation; ``arma11`` (default) an
        AR(1) deviation plus white noise fitted to the residual
        autocorrelations. The point estimate is the same for all three.
    calibration : {"placebo", None}, default="placebo"
        Reference distribution of the studentised cumulative error
        :math:`\hat\Delta / \widehat{sd}`. ``"placebo"``: the same statistic for
        groups of ``N1`` control geos read out by TBR against the remaining
        controls over the same pre-period and test window (its ``1 - alpha``
        quantile of absolute values replaces the t quantile; the p-value is the
        placebo rank). ``None``: Student's t with T0 - 2 df (analytic only).
        Falls back to t when fewer than 10 placebo groups exist.
    n_placebo : int, default=200
        Largest number of placebo groups (all are used when there are fewer).
    seed : int, default=0
        Seed of the placebo groups' draw when they are sampled.

    Attributes
    ----------
    coef_ : ndarray (2,)
        Intercept :math:`\hat a` and slope :math:`\hat b`.
    resid_ : ndarray (T0,)
        Pre-period residuals.
    sigma_ : float
        Residual standard deviation (RSS / (T0 - 2)).
    error_model_ : dict
        The fitted error model (``sigma2`` and ``rho`` or ``r1``/``phi``).
    counterfactual_pre_ : ndarray (T0,)
        In-sample fit of the treated average.
    counterfactual_post_ : ndarray (T1,)
        Counterfactual of the treated average over the test.
    prediction_cov_ : ndarray (T1, T1)
        Covariance of the test period's prediction errors
        :math:`\hat y_t - y_t(0)`: parameter error plus the errors' own, under
        ``errors``.
    df_ : int
        Degrees of freedom of the t reference distribution (T0 - 2).
    placebo_z_ : ndarray (n_groups,)
        Studentised cumulative errors of the placebo groups (empty without
        calibration or without a test period).
    n_treated_, n_controls_ : int
        Number of treated and control series.

    Notes
    -----
    With :math:`Z_0 = [1, \bar x_{\le T_0}]`, :math:`Z_1 = [1, \bar x_{>T_0}]`
    and the errors' covariance :math:`\Omega` over all :math:`T_0 + T_1`
    periods, the test period's prediction errors are
    :math:`A^\top \varepsilon` with
    :math:`A = [Z_0 (Z_0^\top Z_0)^{-1} Z_1^\top;\; -I_{T_1}]`, so their
    covariance is :math:`A^\top \Omega A`. The interval for :math:`\Delta` is
    :math:`\hat\Delta \pm t_{T_0-2,\,1-\alpha/2}\sqrt{1^\top A^\top\Omega A\,1}`
    and the p-value the two-sided t-test of :math:`\Delta = 0`. With
    ``errors="iid"`` this is the paper's interval
    :math:`\sigma^2 (T_1 + 1^\top Z_1 (Z_0^\top Z_0)^{-1} Z_1^\top 1)`.

    Measured on :mod:`causal.world` (200 worlds, 84-day pre-period, 28-day
    test, 2 treated geos; ``docs/estimators_tbr_did_bsts.md``): the purely
    analytic 90% interval covers 0.37 of the time with ``iid`` errors and 0.67
    with ``arma11`` (0.61 on 200 worlds, false positive rate 0.39 at alpha
    0.1); with the default placebo calibration coverage is 0.86 and the false
    positive rate 0.135 (200 worlds), within the 0.85-0.95 and 0.05-0.15
    targets. ``calibration=None`` misses both targets and is kept for
    comparison with the paper only.

    References
    ----------
    Kerman, J., Wang, P. & Vaver, J. (2017). Estimating Ad Effectiveness using
    Geo Experiments in a Time-Based Regression Framework. Google Inc.
    Vaver, J. & Koehler, J. (2011). Measuring Ad Effectiveness Using Geo
    Experiments. Google Inc.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = 100 + rng.normal(0, 5, (40, 3))
    >>> y = 10 + 0.5 * x.mean(axis=1)
    >>> est = TimeBasedRegression().fit(y[:30], x[:30], x[30:])
    >>> inf = est.effect_inference(y[30:], confidence=0.9)
    >>> round(inf.effect, 6) == 0.0
    True
    """

    name = "tbr"
    min_pre_periods = 6
    _parameter_constraints = {
        "errors": [Options("arma11", "ar1", "iid")],
        "calibration": [Options("placebo", None)],
        "n_placebo": [POSITIVE_INT],
        "seed": [SEED],
    }

    def __init__(
        self,
        *,
        errors: str = "arma11",
        calibration: str | None = "placebo",
        n_placebo: int = 200,
        seed: int = 0,
    ) -> None:
        self.errors = errors
        self.calibration = calibration
        self.n_placebo = n_placebo
        self.seed = seed

    def __liftlab_tags__(self) -> EstimatorTags:
        return replace(
            super().__liftlab_tags__(),
            own_inference=True,
            inference_options={
                "placebo": {"calibration": "placebo"},
                "analytic": {"calibration": None},
            },
            without_own_inference={"calibration": None},
        )

    def _fit(self, Y: np.ndarray, X0: np.ndarray, X1: np.ndarray) -> None:
        x0 = X0.mean(axis=1)
        if np.ptp(x0) == 0:
            raise DataError(
                "TimeBasedRegression: the control aggregate is constant over the pre-period; nothing to regress on"
            )
        fit = _tbr_core(Y.mean(axis=1), x0, X1.mean(axis=1), self.errors)
        (
            self.coef_,
            self.counterfactual_pre_,
            self.counterfactual_post_,
            self.resid_,
            self.prediction_cov_,
            info,
        ) = fit
        self.df_ = len(self.resid_) - 2
        self.sigma_ = float(np.sqrt(info["sigma2"]))
        self.error_model_ = info
        self.placebo_z_ = (
            self._placebo_z(Y.shape[1], X0, X1) if self.calibration == "placebo" else np.empty(0)
        )

    def _placebo_z(self, n1: int, X0: np.ndarray, X1: np.ndarray) -> np.ndarray:
        """Studentised cumulative errors of TBR on groups of control geos read out as if treated."""
        J, T1 = X0.shape[1], X1.shape[0]
        if T1 == 0 or J - n1 < 1:
            return np.empty(0)
        z = []
        tot0, tot1 = X0.sum(axis=1), X1.sum(axis=1)
        for g in placebo_groups(J, n1, self.n_placebo, self.seed):
            rest0 = (tot0 - X0[:, g].sum(axis=1)) / (J - n1)
            rest1 = (tot1 - X1[:, g].sum(axis=1)) / (J - n1)
            if np.ptp(rest0) == 0:
                continue
            err, sd = _tbr_cumulative(
                X0[:, g].mean(axis=1), rest0, rest1, X1[:, g].mean(axis=1), self.errors
            )
            if sd > 0:
                z.append(err / sd)
        return np.asarray(z)

    def effect_inference(
        self, Y_treated_post: np.ndarray, confidence: float = 0.9
    ) -> EffectInference:
        """Cumulative effect over the test with its interval and two-sided p-value.

        Parameters
        ----------
        Y_treated_post : ndarray (T1, N1) or (T1,)
            Observed treated outcomes during the test.
        confidence : float, default=0.9
            Level of the interval (the test's level is ``1 - confidence``).

        Returns
        -------
        EffectInference
            ``effect`` = sum over the test of observed average minus
            counterfactual, its interval, p-value and the pointwise band.
        """
        alpha = 1.0 - check_confidence(self, confidence)
        y = treated_post_average(self, Y_treated_post)
        effect = float((y - self.counterfactual_post_).sum())
        sd = float(np.sqrt(max(self.prediction_cov_.sum(), 0.0)))
        z = self.placebo_z_
        if z.size >= 10:
            # Studentised placebo: the analytic sd, with the reference distribution of
            # |error / sd| taken from control geos read out over the same test window.
            zt = abs(effect) / sd if sd > 0 else (0.0 if np.isclose(effect, 0.0) else np.inf)
            q, p = placebo_reference(z, alpha, zt)
            method = f"TBR analytic sd ({self.errors} errors), studentised placebo calibration on {z.size} control groups"
        else:
            q = float(stats.t.ppf(1 - alpha / 2, self.df_))
            if sd > 0:
                p = float(2 * stats.t.sf(abs(effect) / sd, self.df_))
            else:  # a perfect pre-period fit: any deviation is certain
                p = 1.0 if np.isclose(effect, 0.0) else 0.0
            method = f"TBR t interval, {self.errors} errors, {self.df_} df"
        # Pointwise band: the analytic per-period sd with the same reference quantile.
        band = q * np.sqrt(np.clip(np.diag(self.prediction_cov_), 0.0, None))
        return EffectInference(
            effect,
            (effect - q * sd, effect + q * sd),
            p,
            self.counterfactual_post_ - band,
            self.counterfactual_post_ + band,
            method,
        )
