r"""Synthetic control (GeoLift's default) and the ridge-augmented synthetic control.

Both estimators fit the *average* treated series
:math:`\bar y_t = N_1^{-1}\sum_{i \le N_1} y_{it}` (augsynth, and so GeoLift,
averages several treated units into one before fitting).

The simplex-constrained least squares at the heart of both is solved exactly by
Lawson-Hanson non-negative least squares (:func:`scipy.optimize.nnls`) on the
system augmented with a heavily weighted row :math:`M\mathbf 1^\top w = M`:
for 40 donors this takes well under a millisecond, which is what lets the
conformal inference refit it dozens of times in a readout.
"""

from __future__ import annotations

from dataclasses import replace
from numbers import Integral, Real

import numpy as np
from scipy.optimize import nnls
from threadpoolctl import threadpool_limits

from causal.base import NON_NEGATIVE, CounterfactualEstimator, EstimatorTags, Interval


def simplex_least_squares(A: np.ndarray, b: np.ndarray, ridge: float = 0.0) -> np.ndarray:
    r"""Weights on the simplex minimising :math:`\|Aw - b\|^2 + \mathrm{ridge}\,\|w\|^2`.

    Parameters
    ----------
    A : ndarray (T, J)
    b : ndarray (T,)
    ridge : float, default=0.0
        Ridge penalty on the weights (used by synthetic DiD's unit weights).

    Returns
    -------
    ndarray (J,)
        ``w >= 0`` with ``w.sum() == 1``.

    Notes
    -----
    The equality constraint enters as one extra row ``M * 1' w = M`` with
    ``M`` a thousand times the scale of ``A``; the remaining violation is of
    order ``1/M**2`` and is removed by renormalising.
    """
    T, J = A.shape
    if J == 1:
        return np.ones(1)
    scale = max(float(np.sqrt((A**2).sum(axis=0).max())), float(np.abs(b).max()), 1.0)
    # Work on a unit scale so the penalty row dominates in every problem.
    A_s, b_s = A / scale, b / scale
    M = 1e3 * max(1.0, float(np.sqrt((A_s**2).sum(axis=0).max())))
    rows = [A_s, np.full((1, J), M)]
    rhs = [b_s, np.array([M])]
    if ridge > 0:
        rows.insert(1, np.sqrt(ridge) / scale * np.eye(J))
        rhs.insert(1, np.zeros(J))
    w, _ = nnls(np.vstack(rows), np.concatenate(rhs), maxiter=50 * J)
    total = w.sum()
    return w / total if total > 0 else np.full(J, 1.0 / J)


# -- the exact parametric path of the simplex least squares (the design's power search) --
def simplex_path(
    A: np.ndarray,
    b0: np.ndarray,
    b1: np.ndarray,
    t_max: float,
    w0: np.ndarray,
    *,
    max_pieces: int = 500,
) -> list[tuple[float, float, np.ndarray, np.ndarray, np.ndarray]]:
    r"""Exact solution path of :math:`\min_{w\ge0,1'w=1}\|Aw - b_0 - t b_1\|^2` for :math:`t\in[0, t_{max}]`.

    ``w0`` is the solution at :math:`t=0` (its support starts the path).
    Returns pieces ``(t_lo, t_hi, S, p, q)``: on ``[t_lo, t_hi]`` the weights
    are zero outside ``S`` and ``p + t q`` on ``S``. On each piece the KKT
    system of the equality-constrained problem on ``S`` is solved for both
    right-hand sides at once; the piece ends where a weight reaches zero or an
    inactive bound's multiplier does.
    """
    G = A.T @ A
    C = np.column_stack([A.T @ b0, A.T @ b1])
    J = A.shape[1]
    active = w0 > 0
    t = 0.0
    pieces = []
    for _ in range(max_pieces):
        S = np.flatnonzero(active)
        out = np.flatnonzero(~active)
        k = len(S)
        GS = G[:, S]  # one gather per piece; both the KKT block and the multipliers come from it
        K = np.empty((k + 1, k + 1))
        K[:k, :k] = GS[S]
        K[:k, k] = K[k, :k] = 1.0
        K[k, k] = 0.0
        rhs = np.zeros((k + 1, 2))
        rhs[:k] = C[S]
        rhs[k, 0] = 1.0
        sol = np.linalg.solve(K, rhs)
        p, q = sol[:k, 0], sol[:k, 1]
        # Multipliers of the inactive bounds: mu_j(t) = G_jS w_S(t) - c_j(t) + nu(t) >= 0.
        M = (GS @ sol[:k] - C + sol[k])[out]
        m0, m1 = M[:, 0], M[:, 1]
        tol = 1e-12 * max(1.0, t)
        with np.errstate(divide="ignore", invalid="ignore"):
            t_drop = np.where(q < 0, -p / q, np.inf)
            t_add = np.where(m1 < 0, -m0 / m1, np.inf)
        t_drop[t_drop <= t + tol] = np.inf
        t_add[t_add <= t + tol] = np.inf
        td = t_drop.min() if k else np.inf
        ta = t_add.min() if len(out) else np.inf
        t_next = min(td, ta, t_max)
        pieces.append((t, t_next, S, p, q))
        if t_next >= t_max:
            return pieces
        if td <= ta:
            if k == 1:
                raise np.linalg.LinAlgError("the path would empty the support")
            active[S[int(np.argmin(t_drop))]] = False
        else:
            active[out[int(np.argmin(t_add))]] = True
        t = t_next
    raise np.linalg.LinAlgError(f"simplex path did not finish in {max_pieces} pieces (J={J})")


def _null_path_residuals(
    y_pre: np.ndarray,
    y_post: np.ndarray,
    X: np.ndarray,
    lifts: np.ndarray,
    *,
    period_centred: bool,
) -> tuple[np.ndarray, np.ndarray] | None:
    r"""Demeaned simplex refit residuals on the whole window for every lift, and the donor matrix.

    The refit solves :math:`\min_{w\in\Delta}\|A w - b_0 - e\,b_1\|^2` with the test outcome
    scaled by ``1 + e``; its solution is piecewise linear in ``e`` (:func:`simplex_path`).
    ``period_centred``: also centre every period across the donors (the augmented model's
    intercept; the simplex weights are unchanged by it). ``None`` if the path breaks down.
    """
    T0 = len(y_pre)
    y0 = np.concatenate([y_pre, y_post])
    y1 = np.concatenate([np.zeros(T0), y_post])
    A = X - X.mean(axis=0)
    b0, b1 = y0 - y0.mean(), y1 - y1.mean()
    if period_centred:
        m = A.mean(axis=1)
        A, b0 = A - m[:, None], b0 - m
    U = np.empty((len(lifts), len(y0)))
    w0 = simplex_least_squares(A, b0)
    for sign in (1.0, -1.0):
        sel = np.flatnonzero(np.sign(lifts) == sign) if sign < 0 else np.flatnonzero(lifts >= 0)
        if len(sel) == 0:
            continue
        t = np.abs(lifts[sel])
        try:
            pieces = simplex_path(A, b0, sign * b1, float(t.max()), w0)
        except np.linalg.LinAlgError:
            return None
        for t_lo, t_hi, S, p, q in pieces:
            inside = (t >= t_lo) & (t <= t_hi)
            if not inside.any():
                continue
            r0, r1 = b0 - A[:, S] @ p, sign * b1 - A[:, S] @ q
            U[sel[inside]] = r0[None, :] + t[inside, None] * r1[None, :]
    return U, A


class _SCFitMixin:
    """Shared diagnostics and tags of the synthetic-control family."""

    def __liftlab_tags__(self) -> EstimatorTags:
        return replace(super().__liftlab_tags__(), donor_weights=True)

    def pre_fit_diagnostics(self) -> dict[str, float]:
        return {
            "rmse": self.pre_rmse_,
            "r2": self.pre_r2_,
            "scaled_l2_imbalance": self.scaled_l2_imbalance_,
        }

    def _diagnostics(self, y: np.ndarray, X0: np.ndarray, w: np.ndarray) -> None:
        resid = y - self.counterfactual_pre_
        self.pre_rmse_ = float(np.sqrt(np.mean(resid**2)))
        sst = float(np.sum((y - y.mean()) ** 2))
        self.pre_r2_ = float(1.0 - np.sum(resid**2) / sst) if sst > 0 else float("nan")
        # augsynth's scaled L2 imbalance: imbalance of the weights relative to uniform
        # weights, both on the (demeaned, if fixed effects) pre-period outcomes.
        yc, Xc = self._center(y, X0)
        l2 = float(np.sqrt(np.sum((yc - Xc @ w) ** 2)))
        uniform = float(np.sqrt(np.sum((yc - Xc.mean(axis=1)) ** 2)))
        self.l2_imbalance_ = l2
        self.scaled_l2_imbalance_ = l2 / uniform if uniform > 0 else float("nan")

    def _center(self, y: np.ndarray, X0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.fixed_effects:
            return y - y.mean(), X0 - X0.mean(axis=0)
        return y, X0


class SyntheticControl(_SCFitMixin, CounterfactualEstimator):
    r"""Synthetic control with a level shift, as GeoLift's default readout.

    Weights :math:`w` on the donors solve

    .. math:: \min_{w \ge 0,\ \sum_j w_j = 1} \sum_{t \le T_0}
              \big(\dot{\bar y}_t - \textstyle\sum_j w_j \dot y_{jt}\big)^2

    where a dot means demeaned over the pre-period (unit fixed effects,
    augsynth's ``fixedeff = TRUE``). The counterfactual is
    :math:`\hat y_t(0) = \bar y^{pre} + \sum_j w_j (y_{jt} - \bar y_j^{pre})`.
    This is augsynth's ``progfunc = "None", scm = TRUE, fixedeff = TRUE``, the
    model GeoLift fits.

    Parameters
    ----------
    fixed_effects : bool, default=True
        Demean every series over the pre-period (a level shift). ``False`` gives
        the classic synthetic control of Abadie, Diamond & Hainmueller (2010).

    Attributes
    ----------
    weights_ : ndarray (J,)
        Donor weights, non-negative, summing to one.
    intercept_ : float
        Level shift: treated pre-mean minus the weighted donors' pre-mean.
    counterfactual_pre_ : ndarray (T0,)
    counterfactual_post_ : ndarray (T1,)
    pre_rmse_, pre_r2_ : float
        Pre-period fit of the treated average.
    l2_imbalance_, scaled_l2_imbalance_ : float
        augsynth's pre-period imbalance, raw and relative to uniform weights.
    n_treated_, n_controls_ : int

    References
    ----------
    Abadie, A., Diamond, A. & Hainmueller, J. (2010). Synthetic control methods
    for comparative case studies. JASA 105(490), 493-505.
    Doudchenko, N. & Imbens, G. (2016). Balancing, regression,
    difference-in-differences and synthetic control methods. NBER w22791.
    Ben-Michael, E., Feller, A. & Rothstein, J. (2021). The augmented synthetic
    control method. JASA 116(536), 1789-1803 (the ``augsynth`` package).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(30, 4)).cumsum(axis=0)
    >>> sc = SyntheticControl().fit(X[:20, 1] + 5.0, X[:20], X[20:])
    >>> int(np.argmax(sc.weights_)), round(sc.intercept_, 6)
    (1, 5.0)
    """

    name = "sc"
    min_pre_periods = 3
    _parameter_constraints = {"fixed_effects": [bool]}

    def __init__(self, *, fixed_effects: bool = True) -> None:
        self.fixed_effects = fixed_effects

    def _fit(self, Y: np.ndarray, X0: np.ndarray, X1: np.ndarray) -> None:
        y = Y.mean(axis=1)
        yc, Xc = self._center(y, X0)
        w = simplex_least_squares(Xc, yc)
        self.weights_ = w
        self.intercept_ = float(y.mean() - X0.mean(axis=0) @ w) if self.fixed_effects else 0.0
        self.counterfactual_pre_ = X0 @ w + self.intercept_
        self.counterfactual_post_ = X1 @ w + self.intercept_
        self._diagnostics(y, X0, w)

    def null_refit_residuals(
        self, y_pre: np.ndarray, y_post: np.ndarray, X: np.ndarray, lifts: np.ndarray
    ) -> np.ndarray | None:
        """The conformal refit's residuals for every lift, exact (fixed effects only; see base)."""
        if not self.fixed_effects:
            return None
        out = _null_path_residuals(y_pre, y_post, X, np.asarray(lifts, float), period_centred=False)
        return None if out is None else out[0]


class ClassicSyntheticControl(SyntheticControl):
    r"""The classic synthetic control of Abadie, Diamond & Hainmueller (2010): no demeaning.

    The weights match the treated series' *levels* over the pre-period (no
    level shift), :math:`\min_{w \in \Delta} \sum_{t \le T_0} (\bar y_t - \sum_j w_j y_{jt})^2`,
    and the counterfactual is :math:`\sum_j w_j y_{jt}`. This is
    :class:`SyntheticControl` with ``fixed_effects=False``, under its own name
    (``sc-classic``) so a readout says which synthetic control ran. With
    ``predictors`` given to :func:`experiments.readout.read_out`, the readout
    uses :class:`causal.synth_predictors.PredictorSyntheticControl` instead
    (V-weighted predictor matching, as Abadie's Synth).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(30, 4)).cumsum(axis=0) + 10
    >>> sc = ClassicSyntheticControl().fit(0.5 * X[:20, 1] + 0.5 * X[:20, 2], X[:20], X[20:])
    >>> np.round(sc.weights_, 3).tolist(), sc.intercept_
    ([0.0, 0.5, 0.5, 0.0], 0.0)
    """

    name = "sc-classic"

    def __init__(self, *, fixed_effects: bool = False) -> None:
        super().__init__(fixed_effects=fixed_effects)


class AugmentedSyntheticControl(_SCFitMixin, CounterfactualEstimator):
    r"""Ridge-augmented synthetic control (Ben-Michael, Feller & Rothstein 2021).

    Starting from the synthetic-control weights :math:`\hat w` (as
    :class:`SyntheticControl`, on demeaned outcomes when ``fixed_effects``),
    ridge regression of the remaining pre-period imbalance on the donors
    corrects the weights:

    .. math:: \hat w^{aug} = \hat w + X_0^\top (X_0 X_0^\top + \lambda I)^{-1}(\bar y - X_0 \hat w)

    (:math:`X_0` the :math:`T_0 \times J` centred donor matrix), so the
    counterfactual is the synthetic control plus a ridge bias correction. The
    augmented weights may be negative: the method trades some extrapolation
    for a better pre-period fit.

    Parameters
    ----------
    lam : float or None, default=None
        Ridge penalty. ``None`` chooses it as augsynth does: leave-one-period-out
        cross-validation over ``n_lambda`` values from :math:`\sigma_1(X_0)^2`
        down to ``lambda_min_ratio`` times that, taking the largest value whose
        error is within one standard error of the smallest (``min_1se``).
    fixed_effects : bool, default=True
        Demean over the pre-period first (augsynth's ``fixedeff``).
    n_lambda : int, default=20
    lambda_min_ratio : float, default=1e-8
    min_1se : bool, default=True

    Attributes
    ----------
    weights_ : ndarray (J,)
        Augmented donor weights (sum to one, may be negative).
    sc_weights_ : ndarray (J,)
        The synthetic-control weights before augmentation.
    lambda_ : float
        The ridge penalty used.
    cv_errors_ : ndarray (n_lambda,) or None
        Mean squared leave-one-out error per candidate penalty (None if ``lam`` given).
    intercept_ : float
    counterfactual_pre_, counterfactual_post_ : ndarray
    pre_rmse_, pre_r2_, l2_imbalance_, scaled_l2_imbalance_ : float
    n_treated_, n_controls_ : int

    References
    ----------
    Ben-Michael, E., Feller, A. & Rothstein, J. (2021). The augmented synthetic
    control method. JASA 116(536), 1789-1803.
    Abadie, A., Diamond, A. & Hainmueller, J. (2010). JASA 105(490), 493-505.
    """

    name = "asc"
    min_pre_periods = 4
    _parameter_constraints = {
        "lam": [None, NON_NEGATIVE],
        "fixed_effects": [bool],
        "n_lambda": [Interval(Integral, 1, None)],
        "lambda_min_ratio": [Interval(Real, 0, 1, closed="right")],
        "min_1se": [bool],
    }

    def __init__(
        self,
        *,
        lam: float | None = None,
        fixed_effects: bool = True,
        n_lambda: int = 20,
        lambda_min_ratio: float = 1e-8,
        min_1se: bool = True,
    ) -> None:
        self.lam = lam
        self.fixed_effects = fixed_effects
        self.n_lambda = n_lambda
        self.lambda_min_ratio = lambda_min_ratio
        self.min_1se = min_1se

    @staticmethod
    def _ridge_correction(Xc: np.ndarray, resid: np.ndarray, lam: float) -> np.ndarray:
        # (X'X + lam I)^-1 X' r: augsynth writes the dual (T0 x T0) form, equal to this;
        # the primal (J x J) one is cheaper when there are fewer donors than periods.
        J = Xc.shape[1]
        return np.linalg.solve(Xc.T @ Xc + lam * np.eye(J), Xc.T @ resid)

    def _choose_lambda(self, yc: np.ndarray, Xc: np.ndarray) -> tuple[float, np.ndarray]:
        smax = float(np.linalg.svd(Xc, compute_uv=False)[0]) ** 2
        if not smax > 0:
            # Constant donors (e.g. a spend that was zero everywhere): no imbalance to correct, and
            # every penalty gives a zero correction; any positive one keeps the solve defined.
            return 1.0, np.zeros(self.n_lambda)
        lambdas = smax * self.lambda_min_ratio ** np.linspace(0.0, 1.0, self.n_lambda)
        T0 = Xc.shape[0]
        errors = np.empty((T0, len(lambdas)))
        for i in range(T0):
            keep = np.arange(T0) != i
            Xk, yk = Xc[keep], yc[keep]
            w = simplex_least_squares(Xk, yk)
            # One eigendecomposition per held-out period serves every lambda.
            evals, evecs = np.linalg.eigh(Xk.T @ Xk)
            proj = evecs.T @ (Xk.T @ (yk - Xk @ w))
            etas = evecs @ (proj[:, None] / (evals[:, None] + lambdas[None, :]))  # (J, n_lambda)
            errors[i] = (yc[i] - Xc[i] @ w - Xc[i] @ etas) ** 2
        # A near-singular solve can give a non-finite error: such a penalty is never chosen.
        errors = np.where(np.isfinite(errors), errors, np.inf)
        mean = errors.mean(axis=0)
        se = errors.std(axis=0, ddof=1) / np.sqrt(T0) if T0 > 1 else np.zeros(len(lambdas))
        best = int(np.argmin(mean))
        if not np.isfinite(mean[best]):
            return float(lambdas[0]), mean
        if self.min_1se:
            ok = np.flatnonzero(mean <= mean[best] + np.nan_to_num(se[best], posinf=0.0))
            choice = lambdas[ok].max() if ok.size else lambdas[best]
        else:
            choice = lambdas[best]
        return float(choice), mean

    def _fit(self, Y: np.ndarray, X0: np.ndarray, X1: np.ndarray) -> None:
        y = Y.mean(axis=1)
        yc, Xc = self._center(y, X0)
        # As augsynth: the ridge regression also centres every period across the
        # donors (an intercept in the outcome model); the simplex weights are
        # unchanged by it, and the correction then sums to zero.
        period_mean = Xc.mean(axis=1)
        yc, Xc = yc - period_mean, Xc - period_mean[:, None]
        w = simplex_least_squares(Xc, yc)
        if self.lam is None:
            # Many tiny matrix problems: BLAS threads only add contention (10x slower on a busy machine).
            with threadpool_limits(limits=1, user_api="blas"):
                self.lambda_, self.cv_errors_ = self._choose_lambda(yc, Xc)
        else:
            self.lambda_, self.cv_errors_ = float(self.lam), None
        eta = self._ridge_correction(Xc, yc - Xc @ w, self.lambda_)
        self.sc_weights_ = w
        self.weights_ = w + eta
        self.intercept_ = (
            float(y.mean() - X0.mean(axis=0) @ self.weights_) if self.fixed_effects else 0.0
        )
        self.counterfactual_pre_ = X0 @ self.weights_ + self.intercept_
        self.counterfactual_post_ = X1 @ self.weights_ + self.intercept_
        self._diagnostics(y, X0, self.weights_)

    def refit_params(self) -> dict:
        """Parameters for refits inside inference loops: the penalty chosen here, fixed."""
        return {"lam": self.lambda_}

    def null_refit_residuals(
        self, y_pre: np.ndarray, y_post: np.ndarray, X: np.ndarray, lifts: np.ndarray
    ) -> np.ndarray | None:
        """The conformal refit's residuals for every lift, exact: the simplex path, then the
        ridge correction with the fitted penalty held fixed (as the readout's refits hold it)."""
        if not self.fixed_effects:
            return None
        out = _null_path_residuals(y_pre, y_post, X, np.asarray(lifts, float), period_centred=True)
        if out is None:
            return None
        U, A = out
        lam = float(self.lambda_)
        K = A @ A.T
        return lam * np.linalg.solve(K + lam * np.eye(len(K)), U.T).T
