r"""Difference-in-differences with geo and period fixed effects.

The two-way fixed-effects model :math:`y_{it} = \alpha_i + \lambda_t + \delta D_{it} + \varepsilon_{it}`
on a balanced panel with one treatment start gives

.. math:: \hat\delta = (\bar y_{T,\mathrm{post}} - \bar y_{T,\mathrm{pre}}) - (\bar y_{C,\mathrm{post}} - \bar y_{C,\mathrm{pre}}),

the average effect per treated geo and test period; the counterfactual of the
treated average in period :math:`t` is
:math:`\bar y_{T,\mathrm{pre}} + (\bar y_{C,t} - \bar y_{C,\mathrm{pre}})`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy import stats

from causal.base import POSITIVE_INT, SEED, CounterfactualEstimator, EstimatorTags, Options
from causal.errors import ConfigError, DataError
from causal.inference import (
    EffectInference,
    check_confidence,
    placebo_groups,
    treated_post_average,
)


class DifferenceInDifferences(CounterfactualEstimator):
    r"""Difference-in-differences with geo and period fixed effects.

    Estimand: the cumulative effect on the treated geos' average outcome over
    the test, :math:`\Delta = T_1 \delta` with :math:`\delta` the average
    treatment effect on the treated per geo and period, under parallel trends
    in levels.

    Parameters
    ----------
    inference : {"placebo", "cluster"}, default="placebo"
        ``placebo`` (default): placebo-in-space in the manner of Conley & Taber
        (2011). Every group of ``N1`` control geos (all of them, or
        ``n_placebo`` random ones) is read out as if treated against the
        remaining controls; the placebo effects, each divided by its group's
        scale so geos of different sizes and noise are comparable,
        give the null distribution of the treated group's scaled effect
        (see ``scale``).
        ``cluster``: cluster-robust by geo on the geo-collapsed pre/post
        differences (Bertrand, Duflo & Mullainathan 2004), i.e. CR2 with the
        Bell–McCaffrey small-cluster degrees of freedom (the Welch form for two
        groups); with one treated geo the treated group's variance is not
        estimable and a pooled variance with ``N1 + J - 2`` df is used.
    scale : {"rmse", "level"}, default="rmse"
        What placebo effects are divided by: ``rmse`` (default), the
        group's pre-period root mean squared DiD fit error (the RMSPE
        normalisation of Abadie, Diamond & Hainmueller 2010), or ``level``,
        its pre-period mean (relative effects). Measured on the simulated
        world (two draws of 200 worlds), ``level`` covers 0.845 / 0.845 and
        ``rmse`` 0.840 / 0.875 with 90% intervals.
    n_placebo : int, default=1000
        Largest number of placebo groups; all are used when there are fewer.
    seed : int, default=0
        Seed of the placebo groups' random draw (only used when sampling).

    Attributes
    ----------
    counterfactual_pre_ : ndarray (T0,)
        Two-way fixed-effects fit of the treated average in the pre-period.
    counterfactual_post_ : ndarray (T1,)
        Counterfactual of the treated average over the test.
    n_treated_, n_controls_ : int
        Number of treated and control series.

    Notes
    -----
    Why placebo is the default: geo tests have one to a few treated geos,
    and cluster-robust standard errors with so few treated clusters are far
    too small (Conley & Taber 2011; MacKinnon & Webb 2017); their
    heteroskedasticity across geos of different sizes also breaks the pooled
    variance. The placebo distribution uses the controls' own serial
    correlation over the same window, so AR(1) deviations are accounted for.
    The reported interval is
    :math:`[\hat\Delta - s_T q_{1-\alpha/2},\ \hat\Delta - s_T q_{\alpha/2}]`
    with :math:`q` the placebo quantiles of the scaled cumulative effect and
    :math:`s_T` the treated group's scale; the p-value is the two-sided
    placebo rank :math:`(1 + \#\{|\eta_P| \ge |\eta_T|\}) / (1 + n_P)`.
    Measured on :mod:`causal.world` (2 treated geos, 84-day pre-period,
    28-day test; ``docs/estimators_tbr_did_bsts.md``): the default covers
    0.840 and 0.875 on two draws of 200 worlds (0.858 pooled) with false
    positive rates 0.145 and 0.135 at alpha 0.1; one draw is just below the
    0.85 coverage target, so treat the interval as slightly optimistic.
    ``inference="cluster"`` covers 0.835 with a false positive rate of 0.175:
    it misses both targets with two treated geos.

    References
    ----------
    Angrist, J. & Pischke, J.-S. (2009). Mostly Harmless Econometrics, ch. 5.
    Bertrand, M., Duflo, E. & Mullainathan, S. (2004). How Much Should We Trust
    Differences-in-Differences Estimates? QJE 119(1).
    Conley, T. & Taber, C. (2011). Inference with "Difference in Differences"
    with a Small Number of Policy Changes. REStat 93(1).
    Bell, R. & McCaffrey, D. (2002). Bias Reduction in Standard Errors for
    Linear Regression with Multi-Stage Samples. Survey Methodology 28(2).

    Examples
    --------
    >>> import numpy as np
    >>> Y = np.array([[1.0], [2.0]]); X0 = np.array([[3.0, 5.0]]); X1 = np.array([[6.0, 8.0]])
    >>> est = DifferenceInDifferences().fit(Y[:1], X0, X1)
    >>> float(est.counterfactual_post_[0])  # 1 + (7 - 4)
    4.0
    """

    name = "did"
    min_pre_periods = 1
    _parameter_constraints = {
        "inference": [Options("placebo", "cluster")],
        "scale": [Options("rmse", "level")],
        "n_placebo": [POSITIVE_INT],
        "seed": [SEED],
    }

    def __init__(
        self,
        *,
        inference: str = "placebo",
        scale: str = "rmse",
        n_placebo: int = 1000,
        seed: int = 0,
    ) -> None:
        self.inference = inference
        self.scale = scale
        self.n_placebo = n_placebo
        self.seed = seed

    def __liftlab_tags__(self) -> EstimatorTags:
        # Nothing to turn off: the placebos run in effect_inference, only when asked for.
        return replace(
            super().__liftlab_tags__(),
            own_inference=True,
            inference_options={
                "placebo": {"inference": "placebo"},
                "cluster": {"inference": "cluster"},
            },
        )

    def _fit(self, Y: np.ndarray, X0: np.ndarray, X1: np.ndarray) -> None:
        y = Y.mean(axis=1)
        c0, c1 = X0.mean(axis=1), X1.mean(axis=1)
        self.counterfactual_pre_ = y.mean() + (c0 - c0.mean())
        self.counterfactual_post_ = y.mean() + (c1 - c0.mean())
        # Kept for inference (fitted state, hence the trailing underscore): the treated
        # pre-period and the controls' panel.
        self._Y_pre_, self._X0_, self._X1_ = Y, X0, X1

    def effect_inference(
        self, Y_treated_post: np.ndarray, confidence: float = 0.9
    ) -> EffectInference:
        """Cumulative effect over the test with a placebo or cluster-robust interval.

        Parameters
        ----------
        Y_treated_post : ndarray (T1, N1) or (T1,)
            Observed treated outcomes during the test. A 1-D series is taken
            as the treated average (the ``cluster`` method then pools variances).
        confidence : float, default=0.9
            Level of the interval (the test's level is ``1 - confidence``).

        Returns
        -------
        EffectInference
        """
        alpha = 1.0 - check_confidence(self, confidence)
        y = treated_post_average(self, Y_treated_post)
        T1 = len(y)
        effect = float((y - self.counterfactual_post_).sum())
        if T1 == 0:
            return EffectInference(
                0.0, (0.0, 0.0), 1.0, np.empty(0), np.empty(0), "no test periods"
            )
        if self.inference == "cluster":
            return self._cluster(np.asarray(Y_treated_post, float), effect, alpha)
        return self._placebo(effect, alpha)

    def _placebo(self, effect: float, alpha: float) -> EffectInference:
        X0, X1 = self._X0_, self._X1_
        J, n1 = X0.shape[1], self._Y_pre_.shape[1]
        if J - n1 < 1:
            raise ConfigError(
                f"DifferenceInDifferences: placebo inference needs more control geos ({J}) than treated geos ({n1}); "
                "use inference='cluster'"
            )
        groups = placebo_groups(J, n1, self.n_placebo, self.seed)
        W = np.zeros((len(groups), J))
        for g, members in enumerate(groups):
            W[g, list(members)] = 1.0
        # Placebo group means and the remaining controls' means, all at once.
        tot0, tot1 = X0.sum(axis=1), X1.sum(axis=1)
        p0, p1 = X0 @ W.T / n1, X1 @ W.T / n1
        r0 = (tot0[:, None] - X0 @ W.T) / (J - n1)
        r1 = (tot1[:, None] - X1 @ W.T) / (J - n1)
        m_p = p0.mean(axis=0)
        cf1 = m_p + r1 - r0.mean(axis=0)
        scale = self.scale
        if scale == "rmse":
            # Each group's gaps in units of its own pre-period fit error (Abadie et al.'s RMSPE idea).
            s_p = np.sqrt((((p0 - m_p) - (r0 - r0.mean(axis=0))) ** 2).mean(axis=0))
            s_t = float(
                np.sqrt(((self._Y_pre_.mean(axis=1) - self.counterfactual_pre_) ** 2).mean())
            )
            if s_t <= 0 or not np.any(s_p > 0):  # e.g. one pre-period: no fit error to scale by
                scale = "level"
        if scale == "level":
            s_p, s_t = m_p, float(self._Y_pre_.mean())
        with np.errstate(divide="ignore", invalid="ignore"):
            rel_t = (p1 - cf1) / s_p  # (T1, n_groups) pointwise scaled placebo gaps
        ok = np.isfinite(rel_t).all(axis=0)
        if not ok.any():
            raise DataError(
                "DifferenceInDifferences: every placebo group has a zero scale; placebo inference is undefined"
            )
        rel_t = rel_t[:, ok]
        rel = rel_t.sum(axis=0)
        m_t = s_t
        eta = effect / m_t if m_t else (np.inf if effect else 0.0)
        lo_q, hi_q = np.quantile(rel, [alpha / 2, 1 - alpha / 2])
        ci = (effect - m_t * hi_q, effect - m_t * lo_q)
        p = (1 + np.sum(np.abs(rel) >= abs(eta) - 1e-12)) / (1 + rel.size)
        band_lo, band_hi = np.quantile(rel_t, [alpha / 2, 1 - alpha / 2], axis=1)
        # counterfactual band: observed = cf + gap, so cf's band is cf shifted by the gap quantiles' spread
        return EffectInference(
            effect,
            ci,
            float(p),
            self.counterfactual_post_ + m_t * band_lo,
            self.counterfactual_post_ + m_t * band_hi,
            f"DiD placebo-in-space (scaled by {scale}), {rel.size} placebo groups",
        )

    def _cluster(self, Y_post: np.ndarray, effect: float, alpha: float) -> EffectInference:
        X0, X1 = self._X0_, self._X1_
        T1 = X1.shape[0]
        Yp = Y_post if Y_post.ndim == 2 else Y_post[:, None]
        if Yp.shape[1] != self._Y_pre_.shape[1]:
            Yp, Ypre = Yp.mean(axis=1, keepdims=True), self._Y_pre_.mean(axis=1, keepdims=True)
        else:
            Ypre = self._Y_pre_
        d_t = Yp.mean(axis=0) - Ypre.mean(axis=0)  # per treated geo
        d_c = X1.mean(axis=0) - X0.mean(axis=0)  # per control geo
        n1, J = d_t.size, d_c.size
        if n1 >= 2 and J >= 2:
            v1, v0 = d_t.var(ddof=1) / n1, d_c.var(ddof=1) / J
            var = v1 + v0
            df = var**2 / (v1**2 / (n1 - 1) + v0**2 / (J - 1)) if var > 0 else n1 + J - 2
        else:
            pooled = (((d_t - d_t.mean()) ** 2).sum() + ((d_c - d_c.mean()) ** 2).sum()) / max(
                n1 + J - 2, 1
            )
            var = pooled * (1 / n1 + 1 / J)
            df = max(n1 + J - 2, 1)
        sd = T1 * float(np.sqrt(var))
        q = float(stats.t.ppf(1 - alpha / 2, df))
        p = (
            float(2 * stats.t.sf(abs(effect) / sd, df))
            if sd > 0
            else (1.0 if np.isclose(effect, 0) else 0.0)
        )
        # pointwise: the same collapsed variance per period (no per-period model)
        half = q * sd / T1
        return EffectInference(
            effect,
            (effect - q * sd, effect + q * sd),
            p,
            self.counterfactual_post_ - half,
            self.counterfactual_post_ + half,
            f"DiD cluster-robust by geo (CR2, Bell-McCaffrey df {df:.1f})",
        )
