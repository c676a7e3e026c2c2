"""Inference of the structural model: the linear-Gaussian core, robust tempering, shapes, draws.

Given the shapes the model is linear-Gaussian in its coefficients (a conjugate posterior). The
likelihood of each equation is tempered by the group-clustered sandwich (autocorrelated and
regionally correlated residuals), the shapes are averaged over their grid by marginal likelihood
(sampling-importance-resampling), and each draw's coefficients are truncated to be non-negative
(Geweke 1991). A mixin of :class:`allocation.structural.StructuralModel`; it reads the arrays
``fit`` sets.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import linalg, special

from allocation.calibration_lifts import Lift, counterfactual_spend
from allocation.structural_inputs import Q_LEADS, Q_SMOOTHING, _saturated, block_index
from causal import response as R
from causal.errors import DataError

# Days per period of the panels whose lifts' early windows the model can place exactly.
PERIOD_DAYS = {"day": 1, "week": 7}

# Share of a demand-capture channel's within-market log-spend variance its queries explain at or above which
# the panel measures only its slope (measured on the study worlds in docs/calibration.md section 0).
QUERY_BOUND = 0.5


def _least_squares(D: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Minimum-norm least squares through the normal equations (tall, narrow designs: far cheaper than an
    SVD of the design; the pseudo-inverse handles a channel with no spend in a cluster)."""
    return np.linalg.pinv(D.T @ D) @ (D.T @ y)


def _sandwich_inflation(
    D: np.ndarray, r: np.ndarray, sigma2: float, groups: np.ndarray, mask: np.ndarray
) -> float:
    """Mean ratio, over the channel coefficients, of the group-clustered sandwich variance to the iid one.

    The likelihood is tempered by this factor (a curvature adjustment of a misspecified likelihood,
    Ribatet, Cooley & Davison 2012): the coefficient posterior and the shape weights then carry the
    information the autocorrelated, regionally correlated residuals really hold, not the iid count.
    Never below one.
    """
    A_inv = np.linalg.pinv(D.T @ D)
    _, inv = np.unique(groups, return_inverse=True)
    n_g = int(inv.max()) + 1
    S = np.zeros((n_g, D.shape[1]))
    np.add.at(S, inv, D * r[:, None])
    B = S.T @ S * n_g / max(n_g - 1, 1)
    robust = np.einsum("ij,jk,ki->i", A_inv, B, A_inv)
    iid = sigma2 * np.diag(A_inv)
    ok = mask & (iid > 0)
    if not ok.any():
        return 1.0
    return float(max(np.mean(robust[ok] / iid[ok]), 1.0))


class StructuralInference:
    """Posterior over coefficients and shapes (mixin of ``StructuralModel``)."""

    # -- layout and priors -----------------------------------------------------
    def _layout(self) -> None:
        C, K = self._C, self._K
        ix, p = {}, 0
        nk = len(Q_SMOOTHING) + len(Q_LEADS) if self._Q is not None else 0
        ix["kappa"] = np.arange(p, p + nk * C).reshape(nk, C)
        p += nk * C
        ix["gamma"] = np.arange(p, p + K * C).reshape(K, C)
        p += K * C
        self._med_k = [self.channels_.index(c) for c in self.mediated_]
        ix["beta_q"] = np.arange(p, p + len(self._med_k) * C).reshape(len(self._med_k), C)
        p += len(self._med_k) * C
        self._dem_k = [self.channels_.index(c) for c in self.demand_]
        ix["bias"] = np.arange(p, p + len(self._dem_k) * C).reshape(len(self._dem_k), C)
        p += len(self._dem_k) * C
        # Negative controls: channels the graph sends neither into the queries nor after demand.
        self._nc_k = [
            k
            for k, c in enumerate(self.channels_)
            if c not in self.mediated_ and c not in self.capture_
        ]
        n_qb = len(self._med_k) if self._Q is not None and self._nc_k else 0
        ix["qbias"] = np.arange(p, p + n_qb * C).reshape(n_qb, C)
        p += n_qb * C
        self._ix, self._p = ix, p
        pos = np.zeros(p, dtype=bool)
        if not self.allow_negative:
            pos[ix["gamma"].ravel()] = True
            pos[ix["beta_q"].ravel()] = True
        self._positive = pos

    def _priors(self, ys: np.ndarray, qs: np.ndarray | None) -> None:
        """Gaussian prior precision: channel blocks pooled across clusters; kappa nearly flat."""
        prec = np.zeros((self._p, self._p))
        self._tau = {"gamma": self.prior_scale * float(ys.mean())}
        if qs is not None:
            self._tau["beta_q"] = self.prior_scale * float(qs.mean())
            kap = 100.0 * float(ys.mean() / qs.mean())
            for i in self._ix["kappa"].ravel():
                prec[i, i] = 1.0 / kap**2

        # Demand-capture channels (spend following queries, e.g. branded search) get their own prior scale.
        self._tau_k = np.array(
            [
                (self.capture_prior_scale if ch in self.capture_ else self.prior_scale)
                * float(ys.mean())
                for ch in self.channels_
            ]
        )
        for k, idx in enumerate(self._ix["gamma"]):
            prec[np.ix_(idx, idx)] = self._pooled_precision(self._tau_k[k], self._pooling_k(k))
        for idx in self._ix["beta_q"]:
            prec[np.ix_(idx, idx)] = self._pooled_precision(self._tau["beta_q"])
        self._prior_prec = prec
        self._slope = self._shape_slopes()

    def _shape_slopes(self) -> np.ndarray:
        """(K, n_cand) each shape's slope at the channel's mean spend per unit size, ``f'(ref) ref``,
        over the grid centre's (half-saturation at the mean spend, exponent 1: 1/4).

        With ``prior_on="marginal_return"`` a channel's coefficient prior at shape ``j`` has sd
        ``tau / slope[j]``: the prior is on the marginal return at mean spend, the same for every shape.
        A prior on the coefficient instead (``"coefficient"``) is tighter on what the panel measures for
        a steep shape than for a flat one, and the marginal likelihood's Occam factor then favours the
        flat one: a channel the panel does not pin down drifts to the grid's largest half-saturation
        (issue 14, docs/backtest.md session 10: programmatic on three worlds of four).
        """
        out = np.ones((self._K, self._n_cand))
        if self.prior_on == "coefficient":
            return out
        for k, ch in enumerate(self.channels_):
            if k in self._query_bound:
                # its shapes weigh by the prior and its lifts, not the panel (capture_shape_weights):
                # no Occam factor to even out, and its tight prior is on its coefficient
                continue
            cands = self.grid_[ch]
            ref = cands[0].half_saturation / self.half_saturations[0]
            grid = {
                "beta": 1.0,
                "half_saturation": np.array([sh.half_saturation for sh in cands]),
                "shape": np.array([sh.shape for sh in cands]),
            }
            centre = {"beta": 1.0, "half_saturation": ref, "shape": 1.0}
            out[k] = R.derivative("hill", ref, grid) / R.derivative("hill", ref, centre)
        return out

    def _shape_prior(self, combo: np.ndarray) -> tuple[np.ndarray, float]:
        """The coefficient prior's precision at the shapes ``combo`` and the part of its log normalising
        constant that depends on them (``0.5 log det``: what the marginal likelihood compares)."""
        s = self._slope[np.arange(self._K), combo]
        if np.all(s == 1.0):
            return self._prior_prec, 0.0
        prec = self._prior_prec.copy()
        logdet = 0.0
        blocks = [(k, self._ix["gamma"][k]) for k in range(self._K)]
        blocks += [(k, self._ix["beta_q"][j]) for j, k in enumerate(self._med_k)]
        for k, idx in blocks:
            prec[np.ix_(idx, idx)] *= s[k] ** 2
            logdet += len(idx) * float(np.log(s[k]))
        return prec, logdet

    def _pooled_precision(self, tau: float, pooling: float | None = None) -> np.ndarray:
        """Prior precision of one coefficient's clusters: a shared level of sd ``tau`` and each cluster's
        deviation of sd ``pooling * tau`` (``pooling`` defaults to the model's)."""
        C = self._C
        pool = self.pooling if pooling is None else pooling
        cov = tau**2 * np.ones((C, C)) + (pool * tau) ** 2 * np.eye(C)
        return np.linalg.inv(cov)

    def _row_clusters(self) -> np.ndarray:
        """Cluster index of every row of the stacked (date-major) panel."""
        return np.repeat(self.cluster_idx_[None, :], self._T, axis=0).ravel()

    def _pooling_k(self, k: int) -> float:
        """Cluster pooling of channel ``k``: ``capture_pooling`` for a demand-capture channel whose spend the
        queries mostly explain (its clusters are not told apart there), else ``pooling``."""
        return self.capture_pooling if k in self._query_bound else self.pooling

    def _query_bound_channels(self, lifts: Sequence[Lift] = ()) -> dict[int, float]:
        """Demand-capture channels whose spend the queries mostly explain, with that share.

        The share of the channel's within-market variance of log spend that log queries explain
        (one minus the variance of log spend per query over that of log spend, each demeaned per
        market), on periods with positive spend outside the lifts' treated markets and windows (an
        experiment's spend change is measured by its lift term). At or above ``QUERY_BOUND`` the spend
        moves mostly with the queries: the panel measures its slope at current spend, not its curve
        (``capture_shape_weights``, ``capture_pooling``). Below it the spend moves mostly on its own and
        the channel is weighed and pooled like any other. Only given a real query column (a spend proxy
        of the queries is the capture channel's own spend).
        """
        if self.capture_shape_weights == "likelihood" or not self.has_mediator_:
            return {}
        keep = np.ones((self._T, self._G), dtype=bool)
        index = {g: i for i, g in enumerate(self.geos_)}
        for lf in lifts:
            rows = (self.dates_ >= pd.Timestamp(lf.start)) & (self.dates_ <= pd.Timestamp(lf.end))
            keep[np.ix_(np.flatnonzero(rows), [index[g] for g in lf.treated])] = False
        out = {}
        for k, ch in enumerate(self.channels_):
            if ch not in self.capture_:
                continue
            x, q = self._spend[ch], self._Q
            ok = keep & (x > 0) & (q > 0)
            own = total = 0.0
            for g in range(self._G):
                sel = ok[:, g]
                if sel.sum() < 2:
                    continue
                lx = np.log(x[sel, g])
                total += float(lx.var()) * sel.sum()
                own += float(np.log(x[sel, g] / q[sel, g]).var()) * sel.sum()
            share = 1.0 - own / total if total > 0 else 0.0
            if share >= QUERY_BOUND:
                out[k] = share
        return out

    # -- the linear-Gaussian core ------------------------------------------------
    def _cols(self, combo: np.ndarray) -> np.ndarray:
        return np.array([self._nb + k * self._n_cand + int(j) for k, j in enumerate(combo)])

    def _likelihood(self, combo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Observational precision and rhs over theta for a shape combination (all clusters at once)."""
        p = self._p
        P, r = np.zeros((p, p)), np.zeros(p)
        cols = self._cols(combo)
        ix = self._ix
        # signups equation: columns [Q] + channel features (+ bias copies of demand channels)
        ycols = np.r_[np.arange(1, self._nb), cols, cols[self._dem_k]].astype(int)
        ypar = np.vstack([ix["kappa"], ix["gamma"], ix["bias"]]).T  # (C, m): parameters per cluster
        g = self._gram
        P[ypar[:, :, None], ypar[:, None, :]] = self._wy * g[:, ycols[:, None], ycols[None, :]]
        r[ypar] = self._wy * g[:, ycols, 0]
        if self._Q is not None and self._med_k:
            qcols = cols[self._med_k]
            qpar = ix["beta_q"].T  # (C, n_med)
            if len(ix["qbias"]):  # the observational coefficient is beta_q + confounding bias
                qcols = np.r_[qcols, qcols]
                qpar = np.vstack([ix["beta_q"], ix["qbias"]]).T
            P[qpar[:, :, None], qpar[:, None, :]] += self._wq * g[:, qcols[:, None], qcols[None, :]]
            r[qpar] += self._wq * g[:, qcols, 1]
        return P, r

    def _bias_prior(self) -> np.ndarray:
        prec = np.zeros(self._p)
        for j in range(len(self._dem_k)):
            for c in range(self._C):
                prec[self._ix["bias"][j, c]] = 1.0 / self._bias_tau[j] ** 2
        return prec

    def _posterior(
        self, combo: np.ndarray, use: Sequence[int]
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """Posterior mean, Cholesky factor of the precision, and log marginal likelihood (up to a constant).

        Cached per (shape vector, lifts) until the tempering weights change (:meth:`_noise`): the
        search's passes and the resampling revisit the same shape vectors.
        """
        key = (tuple(int(j) for j in combo), tuple(use))
        hit = self._post_cache.get(key)
        if hit is not None:
            return hit
        P, r = self._likelihood(combo)
        prior, prior_logdet = self._shape_prior(combo)
        P = P + prior + self._qbias_prec
        r = r + self._qbias_rhs
        P[np.diag_indices(self._p)] += self._bias_prior()
        for i in use:
            j = combo[self.channels_.index(self._lift_ch[i])]
            for row, val, sd in filter(None, (self._lift_rows[i], self._early_rows[i])):
                rr = row[:, j]
                P += np.outer(rr, rr) / sd**2
                r = r + rr * val / sd**2
        L = np.linalg.cholesky(P)
        z = linalg.solve_triangular(L, r, lower=True)
        mean = linalg.solve_triangular(L.T, z, lower=False)
        logml = 0.5 * float(z @ z) - float(np.log(np.diag(L)).sum()) + prior_logdet
        self._post_cache[key] = out = (mean, L, logml)
        return out

    def _noise(self, combo: np.ndarray, lifts: Sequence[int]) -> None:
        """Residual variance and lag-one autocorrelation of each equation at ``combo``: the tempering weights."""
        self._wy = self._wq = 1.0
        self._post_cache: dict = {}  # posteriors depend on the weights set here
        self._bias_tau = np.ones(len(self._dem_k))
        self._qbias_prec = np.zeros((self._p, self._p))
        self._qbias_rhs = np.zeros(self._p)
        # Least squares at the combination (a flat-prior fit) for the residuals.
        T, G = self._T, self._G
        cols = self._cols(combo)
        has_q = self._Q is not None
        feats = self._X[:, cols].astype(float)
        yv = self._X[:, 0].astype(float)
        design = (
            np.column_stack([self._X[:, 1 : self._nb].astype(float), feats]) if has_q else feats
        )
        design = self._split(design)
        coef = _least_squares(design, yv)
        ry = yv - design @ coef
        out = {"y": ry}
        if has_q and self._med_k:
            dq = self._split(feats[:, self._med_k])
            qv = self._X[:, 1].astype(float)
            cq = _least_squares(dq, qv)
            out["q"] = qv - dq @ cq
            if len(self._ix["qbias"]):
                self._negative_control_bias(combo, feats, qv)
        stats_ = {}
        groups = self._groups()
        designs = {"y": design, "q": dq if "q" in out else None}
        for name, res in out.items():
            R = res.reshape(T, G)
            rho = (
                float(np.clip((R[1:] * R[:-1]).sum() / (R * R).sum(), 0.0, 0.95)) if T > 2 else 0.0
            )
            sigma2 = float(res @ res) / max(self._dof - designs[name].shape[1], 1)
            vif = _sandwich_inflation(
                designs[name], res, sigma2, groups, self._n_channel_cols(name)
            )
            stats_[name] = (sigma2, rho, vif)
        self.noise_ = stats_
        self._wy = 1.0 / (stats_["y"][0] * stats_["y"][2])
        self._wq = 1.0 / (stats_["q"][0] * stats_["q"][2]) if "q" in stats_ else 1.0
        if self._dem_k:
            # Confounding-bias scale: the observational coefficient of each demand-following channel.
            per = coef.reshape(self._C, -1)[
                :, self._nb - 1 :
            ].T  # (K, C); columns were split by cluster
            self._bias_tau = np.array(
                [
                    self.demand_bias_scale * max(abs(per[k]).max(), 0.05 * self._tau["gamma"])
                    for k in self._dem_k
                ]
            )

    def _negative_control_bias(self, combo: np.ndarray, feats: np.ndarray, qv: np.ndarray) -> None:
        """Prior of the mediated channels' confounding bias in the queries equation, from negative controls.

        The graph says the negative-control channels (no edge into the queries, spend with no parent)
        do not move the queries, so their coefficients in the queries equation, fitted next to the
        mediated channels, measure how much planned spend co-moves with organic demand the fixed block
        does not absorb (negative-control exposures: Lipsitch, Tchetgen Tchetgen & Cohen 2010; the
        systematic-error prior of empirical calibration: Schuemie et al. 2018). Each mediated channel's
        bias gets a zero-mean prior whose contribution sd is the root mean square of the controls'
        spurious query contributions: demand that moves one channel's spend may move another's as much.
        The bias sits next to ``beta_q`` in the observational likelihood only; a lift loads on
        ``beta_q`` and so separates them.
        """
        D = np.column_stack([self._split(feats[:, self._med_k]), feats[:, self._nc_k]])
        coef = _least_squares(D, qv)[-len(self._nc_k) :]
        spurious = np.array(
            [coef[j] * self._unit[k][combo[k]].sum() for j, k in enumerate(self._nc_k)]
        )
        self.negative_control_ = {self.channels_[k]: float(v) for k, v in zip(self._nc_k, spurious)}
        mu, rms = float(spurious.mean()), float(np.sqrt(np.mean(spurious**2)))
        C = self._C
        scale = []
        for j, k in enumerate(self._med_k):
            denom = float(self._unit[k][combo[k]].sum())
            tau = max(rms / denom if denom > 0 else 0.0, 1e-3 * self._tau["beta_q"])
            scale.append(tau)
            idx = self._ix["qbias"][j]
            prec = self._pooled_precision(tau)
            self._qbias_prec[np.ix_(idx, idx)] = prec
            if self.negative_control_mean and denom > 0:
                self._qbias_rhs[idx] = prec @ np.full(C, mu / denom)
        self._qbias_tau = np.array(scale)

    def _specification_shift(self, combo: np.ndarray, use: Sequence[int], Xa: np.ndarray) -> None:
        """Posterior mean under the other fixed block, at the mode's shapes: half the draws move there.

        ``Xa`` holds the outcome, the demand-proxy columns and each channel's feature at ``combo``,
        projected on the other fixed block. The two blocks adjust for organic demand differently
        (smooth per-cluster seasonality and trend with the controls, or a free effect per cluster and
        period, identified from within-cluster differences only); which one is right is not
        something the panel settles, and their marginal likelihoods are of differently projected data,
        so they are not compared: the specifications get equal weight (Draper 1995, model
        uncertainty as part of the posterior). The other block's posterior keeps this block's
        precision (covariance) and its own negative-control bias prior; the draws of the other half are
        centred at its mean (``spec_shift_``), so between-specification spread enters every summary
        and curve.
        """
        nb = self._nb
        cols = self._cols(combo)
        idx = np.r_[np.arange(nb), cols]
        rows_c = self._row_clusters()
        gram = np.zeros_like(self._gram)
        for c in range(self._C):
            Xi = Xa[rows_c == c]
            gram[c][np.ix_(idx, idx)] = Xi.T @ Xi
        saved = (self._gram, self._post_cache, self._qbias_prec, self._qbias_rhs)
        saved_nc = getattr(self, "negative_control_", {})
        try:
            self._gram, self._post_cache = gram, {}
            if len(self._ix["qbias"]):
                self._qbias_prec = np.zeros_like(self._qbias_prec)
                self._qbias_rhs = np.zeros_like(self._qbias_rhs)
                self._negative_control_bias(combo, Xa[:, nb:], Xa[:, 1])
            alt_mean = self._posterior(combo, use)[0]
        finally:
            self._gram, self._post_cache, self._qbias_prec, self._qbias_rhs = saved
            self.negative_control_ = saved_nc
        self.spec_shift_ = alt_mean - self._posterior(combo, use)[0]

    def _groups(self) -> np.ndarray:
        """Dependence group of every row (date-major): market cluster by block of consecutive periods.

        Residuals of geo data are correlated over time within a geo and across the geos of a market
        cluster on the same days (regional shocks); blocks of ``BLOCK_PERIODS`` (eight weeks) are
        long against that persistence, so the groups are close to independent.
        """
        block = block_index(self._T, self.period_)
        return (block[:, None] * self._C + self.cluster_idx_[None, :]).ravel()

    def _n_channel_cols(self, name: str) -> np.ndarray:
        """Mask of the channel columns in the (cluster-split) least-squares design of an equation."""
        if name == "q":
            return np.ones(len(self._med_k) * self._C, dtype=bool)
        per = np.r_[np.zeros(self._nb - 1, dtype=bool), np.ones(self._K, dtype=bool)]
        return np.tile(per, self._C)

    def _split(self, M: np.ndarray) -> np.ndarray:
        """Columns split by cluster (one copy per cluster, zero outside it)."""
        if self._C == 1:
            return M
        rc = self._row_clusters()
        return np.column_stack([np.where((rc == c)[:, None], M, 0.0) for c in range(self._C)])

    def _search(self, combo: np.ndarray, lifts: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Coordinate ascent of the marginal likelihood times the shape prior over the grid; conditional
        log weights at the mode."""
        combo = combo.copy()
        cond = np.zeros((self._K, self._n_cand))
        for _ in range(2):
            for k in range(self._K):
                # Shapes the prior rules out (weight -inf) are not evaluated.
                vals = self._shape_log_prior[k].copy()
                for j in np.flatnonzero(np.isfinite(vals)):
                    trial = combo.copy()
                    trial[k] = j
                    vals[j] += self._posterior(trial, lifts)[2]
                combo[k] = int(np.argmax(vals))
                cond[k] = vals
        return combo, cond

    def _panel_shape_logml(self, combo: np.ndarray) -> dict[int, np.ndarray]:
        """Each demand-capture channel's no-lift conditional log marginal likelihood over its shapes at ``combo``.

        With ``capture_shape_weights="prior"`` this is divided out of the shape weights: given the
        queries, a capture channel's spend (which follows them) moves only by its own small noise, which
        tells its slope at current spend but not the curve down to zero, and the panel's preference among
        its shapes then comes from what the linear demand proxy leaves unexplained (measured in
        benchmarks/diagnose_brand.py). Lifts keep their say: their likelihood is not divided out.
        """
        out = {}
        for k in self._query_bound:
            vals = np.empty(self._n_cand)
            for j in range(self._n_cand):
                trial = combo.copy()
                trial[k] = j
                vals[j] = self._posterior(trial, [])[2]
            out[k] = vals
        return out

    # -- lifts -------------------------------------------------------------------
    def _lift_row(self, lf: Lift, kappa: np.ndarray) -> tuple[np.ndarray, float, float]:
        """Loadings (p, n_cand) of a lift's predicted total incremental on theta, for each shape of its channel."""
        dates = self.dates_
        window = np.flatnonzero((dates >= pd.Timestamp(lf.start)) & (dates <= pd.Timestamp(lf.end)))
        if window.size == 0:
            raise DataError(f"{lf.source}: lift window {lf.start}..{lf.end} holds no panel date")
        return self._window_row(lf, kappa, window), lf.incremental, lf.sd

    def _window_row(self, lf: Lift, kappa: np.ndarray, window: np.ndarray) -> np.ndarray:
        """Loadings (p, n_cand) of the lift's predicted incremental over the periods ``window``.

        The intervention is the lift's whole one (its spend change over its whole window, adstock over
        the whole series, so carryover into ``window`` counts)."""
        k = self.channels_.index(lf.channel)
        index = {g: i for i, g in enumerate(self.geos_)}
        cols = np.array([index[g] for g in lf.treated])
        dates = self.dates_
        full = np.flatnonzero((dates >= pd.Timestamp(lf.start)) & (dates <= pd.Timestamp(lf.end)))
        x = self._spend[lf.channel]
        cf = counterfactual_spend(x, full, cols, lf)[:, cols]
        s = self.size_.to_numpy()[cols]
        row = np.zeros((self._p, self._n_cand))
        for j, sh in enumerate(self.grid_[lf.channel]):
            f_obs = _saturated(x[:, cols] / s, sh)
            f_cf = _saturated(cf / s, sh)
            per_geo = (f_obs - f_cf)[window].sum(axis=0) * s
            for c in range(self._C):
                tot = float(per_geo[self.cluster_idx_[cols] == c].sum())
                row[self._ix["gamma"][k, c], j] = tot
                if k in self._med_k:
                    row[self._ix["beta_q"][self._med_k.index(k), c], j] = kappa[c] * tot
        return row

    def _early_row(
        self, lf: Lift, kappa: np.ndarray, total_row: np.ndarray
    ) -> tuple[np.ndarray, float, float] | None:
        """The lift's early-window term given its total (readout.json ``early``), or None.

        ``early - slope * total`` is independent of the total for jointly normal readout errors, so
        it enters as one more term next to the total's (:mod:`experiments.readout_windows`). None
        when the readout has no early window or the panel's periods do not cover exactly its days.
        """
        e = lf.early
        days = PERIOD_DAYS.get(self.period_)
        if e is None or days is None:
            return None
        dates = self.dates_
        window = np.flatnonzero((dates >= pd.Timestamp(lf.start)) & (dates <= pd.Timestamp(lf.end)))
        first = np.flatnonzero((dates >= pd.Timestamp(e.start)) & (dates <= pd.Timestamp(e.end)))
        if (
            first.size == 0
            or first.size >= window.size
            or first[0] != window[0]
            or dates[first[0]] != pd.Timestamp(e.start)
            or dates[first[-1]] + pd.Timedelta(days=days - 1) != pd.Timestamp(e.end)
        ):
            return None
        row = self._window_row(lf, kappa, first) - e.slope_on_total * total_row
        return row, e.incremental - e.slope_on_total * lf.incremental, e.sd_given_total

    # -- sampling ----------------------------------------------------------------
    def _sample(self, cond: np.ndarray, use: Sequence[int], rng: np.random.Generator) -> None:
        """Shapes by sampling-importance-resampling over the grid, then truncated-normal coefficients."""
        N, K = self.n_draws, self._K
        # Target: the marginal likelihood with each capture channel's panel-only shape preference divided
        # out (its shapes then weigh by the prior and the lifts alone; _panel_shape_logml).
        panel = np.zeros((K, self._n_cand))
        for k, vals in getattr(self, "_capture_cond", {}).items():
            panel[k] = vals
        cond = cond - panel
        logq = cond - special.logsumexp(cond, axis=1, keepdims=True)
        n_prop = 4 * N
        props = np.column_stack(
            [rng.choice(self._n_cand, size=n_prop, p=np.exp(logq[k])) for k in range(K)]
        )
        uniq, inv = np.unique(props, axis=0, return_inverse=True)
        inv = np.asarray(inv).ravel()
        cache = {}
        logw = np.empty(len(uniq))
        for u, combo in enumerate(uniq):
            post = self._posterior(combo, use)
            cache[u] = post
            logw[u] = (
                post[2]
                + self._shape_log_prior[np.arange(K), combo].sum()
                - panel[np.arange(K), combo].sum()
                - logq[np.arange(K), combo].sum()
            )
        w = np.exp(logw[inv] - logw[inv].max())
        w /= w.sum()
        self.shape_ess_ = float(1.0 / (w**2).sum())
        # Systematic resampling keeps the draws' shape mix close to the weights.
        pos = (rng.random() + np.arange(N)) / N
        pick = np.minimum(np.searchsorted(np.cumsum(w), pos), n_prop - 1)
        thetas = np.empty((N, self._p))
        for i, j in enumerate(pick):
            mean, L, _ = cache[inv[j]]
            # Every other draw from the other specification (equal weights, _specification_shift).
            thetas[i] = self._truncated_draw(mean + (i % 2) * self.spec_shift_, L, rng)
        combos = uniq[inv[pick]]
        self.draws_ = {"shape": combos, "theta": thetas}

    def _robust_scale(self, combo: np.ndarray, use: Sequence[int]) -> None:
        """Per-parameter widening of the posterior to a group-clustered sandwich (Mueller 2013).

        At the mode's shapes: the posterior covariance ``S`` (tempered likelihood, prior, lifts) and the
        sandwich ``S B S`` with ``B`` the outer products of each dependence group's summed likelihood
        scores (:meth:`_groups`: market cluster by eight-week block; robust to autocorrelation and to
        regional shocks shared by a cluster's geos, and to misspecification of the mean). Where the sandwich
        variance is larger, the draws are scaled up by the square root of the ratio; never narrowed.
        """
        C = self._C
        mean, L, _ = self._posterior(combo, use)
        cols = self._cols(combo)
        ix = self._ix
        has_q = self._Q is not None
        feats = self._X[:, cols].astype(float)
        yv = self._X[:, 0].astype(float)
        blocks = [self._X[:, 1 : self._nb].astype(float)] if has_q else []
        ycols = blocks + [feats] + ([feats[:, self._dem_k]] if self._dem_k else [])
        Dy = np.column_stack(ycols)  # (n, J + K + nd) before the cluster split
        # Parameter index of each (column, cluster) of the signups equation.
        ypar = [
            list(ix["kappa"][:, c]) + list(ix["gamma"][:, c]) + list(ix["bias"][:, c])
            for c in range(C)
        ]
        rc = self._row_clusters()
        geo = self._groups()
        n_g = int(geo.max()) + 1
        scores = np.zeros((n_g, self._p))
        for c in range(C):
            rows = rc == c
            pred = Dy[rows] @ mean[ypar[c]]
            r = (yv[rows] - pred) * self._wy
            sc = Dy[rows] * r[:, None]
            np.add.at(scores, (geo[rows][:, None], np.array(ypar[c])[None, :]), sc)
            if has_q and self._med_k:
                Dq = feats[rows][:, self._med_k]
                qpar = list(ix["beta_q"][:, c])
                if len(ix["qbias"]):
                    Dq = np.column_stack([Dq, Dq])
                    qpar += list(ix["qbias"][:, c])
                rq = (self._X[rows, 1].astype(float) - Dq @ mean[qpar]) * self._wq
                np.add.at(scores, (geo[rows][:, None], np.array(qpar)[None, :]), Dq * rq[:, None])
        S = np.linalg.inv(L @ L.T)
        V = S @ (scores.T @ scores) @ S * n_g / max(n_g - 1, 1)
        ratio = np.diag(V) / np.maximum(np.diag(S), 1e-300)
        self.robust_scale_ = np.sqrt(np.maximum(ratio, 1.0))

    def _truncated_draw(
        self, mean: np.ndarray, L: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """One draw of N(mean, D (L L')^-1 D) restricted to the positive coordinates being >= 0.

        ``D`` is the robust scale (:meth:`_robust_scale`): the posterior widened where the
        geo-clustered sandwich says the model-based covariance is too narrow.
        """
        pos = self._positive
        D = self.robust_scale_
        for _ in range(20):
            x = mean + D * np.linalg.solve(L.T, rng.standard_normal(len(mean)))
            if (x[pos] >= 0).all():
                return x
        # Gibbs on the precision (Geweke 1991), started at the projection on the constraint.
        P = (L @ L.T) / np.outer(D, D)
        x = np.where(pos, np.maximum(mean, 0.0), mean)
        d = np.diag(P)
        for _ in range(30):
            for i in range(len(x)):
                m = mean[i] - (P[i] @ (x - mean) - d[i] * (x[i] - mean[i])) / d[i]
                sd = 1.0 / np.sqrt(d[i])
                if not pos[i]:
                    x[i] = m + sd * rng.standard_normal()
                    continue
                a = -m / sd
                if a > 6:
                    x[i] = sd * (a + rng.exponential() / a) + m
                else:
                    lo = special.ndtr(a)
                    x[i] = m + sd * special.ndtri(lo + rng.random() * (1 - lo))
                x[i] = max(x[i], 0.0)
        return x
