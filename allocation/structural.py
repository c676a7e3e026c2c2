r"""A structural response model that follows the causal graph: queries, then signups.

Two equations, per unit of market size :math:`s_g` (geo :math:`g` in cluster
:math:`c`, period :math:`t`), sharing each channel's adstock and saturation
:math:`f_{k}(x) = \mathrm{Hill}(\mathrm{adstock}(x/s_g; \lambda_k); K_k, n_k)`:

.. math::

    Q_{gt}/s_g &= \text{fixed}^{Q}_{gt} + \sum_{k \in \mathcal{M}} \beta^{q}_{kc}\, f_k(x^k_{g\cdot})_t + u_{gt}
    \qquad \text{(branded queries: organic demand + what the upper funnel stirs up)}

    y_{gt}/s_g &= \text{fixed}^{y}_{gt} + \kappa_c\, Q_{gt}/s_g + \sum_k \gamma_{kc}\, f_k(x^k_{g\cdot})_t + e_{gt}
    \qquad \text{(signups given the demand proxy)}

"fixed" is geo effects plus per-cluster trend, yearly Fourier terms, day of
week and the graph's controls (profiled out, Frisch-Waugh-Lovell). The
branded-query volume :math:`Q` is the demand proxy of Chen et al. (2018): given
it, branded search's spend (which follows the queries) varies only by its own
noise, so :math:`\gamma_{bs}` is its incremental effect, not organic demand.
:math:`\mathcal{M}` are the channels the graph sends into the queries. A
channel's total effect is the path rule,

.. math:: \text{total}_{kc} = \gamma_{kc} + \kappa_c\, \beta^{q}_{kc},

direct (not through the queries) plus mediated (through them); because both
paths share :math:`f_k`, the total response is one Hill curve with
coefficient :math:`\gamma + \kappa\beta^q`, which is what curves.json holds.

Inference. Given the shapes :math:`(\lambda_k, K_k, n_k)` the model is
linear-Gaussian in :math:`\theta = (\kappa, \gamma, \beta^q)`: the posterior is
conjugate. Each equation's likelihood is tempered by its residual lag-one
autocorrelation :math:`\rho` (variance times :math:`(1+\rho)/(1-\rho)`, the
effective-sample-size correction of an AR(1) mean), so intervals and shape
weights do not treat persistent daily deviations as independent information.
The shapes are averaged over a grid by marginal likelihood: proposals from each
channel's conditional weights, exact joint marginal likelihoods, then
sampling-importance-resampling. Each posterior draw is one shape vector and
one coefficient draw from its conditional posterior, truncated to
:math:`\gamma, \beta^q \ge 0` (Gibbs sampler of Geweke 1991) unless negative
effects are allowed. Coefficients are pooled within each channel across
clusters: :math:`\gamma_{kc} = \bar\gamma_k + u_{kc}`, :math:`u_{kc} \sim N(0, \tau_u^2)`.

Lifts enter as Gaussian likelihood terms on the *total* incremental of exactly
their intervention (treated geos, window, spend change, carryover from the
whole series), with :math:`\kappa` at its posterior mean.

Without a usable mediator column the adjustment for demand cannot be made:
the model says so (a warning and a note) and each demand-following channel
(spend with a parent in the graph, e.g. branded search) gets a confounding bias
:math:`b_{kc}` in the observational likelihood, :math:`N(0, (\text{scale}\,|\hat\gamma|)^2)`,
so its interval spans what the panel cannot tell apart.

References
----------
Chen, A., Chan, D., Perry, M., Jin, Y., Sun, Y., Wang, Y., & Koehler, J. (2018).
Bias correction for paid search in media mix modeling. Google Inc.
Jin, Y., Wang, Y., Sun, Y., Chan, D., & Koehler, J. (2017). Bayesian methods for
media mix modeling with carryover and shape effects. Google Inc.
Geweke, J. (1991). Efficient simulation from the multivariate normal and
Student-t distributions subject to linear constraints.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from allocation.calibration import Lift, counterfactual_spend, finish_curve_axes, validate_lift
from allocation.mmm import QUARTER_PERIODS, fixed_block
from causal import response as R
from causal.base import BaseEstimator, check_is_fitted
from causal.errors import ConfigError, DataError
from causal.panel import SPEND_PREFIX, Panel
from causal.response import geometric_adstock

DECAYS = (0.0, 0.2, 0.4, 0.6, 0.8)
HALF_SATURATION = (0.5, 1.0, 2.0, 4.0)  # times the channel's mean positive spend per unit size
SHAPES = (0.8, 1.0, 1.5)  # Hill exponents: with one, the extrapolation to zero spend is too sure
CAPTURE_DECAYS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45)
Q_SMOOTHING = (0.0, 0.2, 0.4, 0.6, 0.8)  # decays of the query smoothings in the demand proxy


class MediatorWarning(UserWarning):
    """The mediator (branded queries) is missing or constant: demand could not be adjusted for."""


@dataclass(frozen=True)
class Shape:
    decay: float
    half_saturation: float  # per unit market size
    shape: float


def _saturated(x: np.ndarray, sh: Shape) -> np.ndarray:
    """Unit-coefficient Hill curve of the normalised geometric adstock (the curve core's), along axis 0."""
    a = geometric_adstock(x, sh.decay)
    return R.value(
        "hill", a, {"beta": 1.0, "half_saturation": sh.half_saturation, "shape": sh.shape}
    )


def resolve_clusters(
    panel: Panel,
    mapping: Mapping[str, str] | None = None,
    column: str | None = None,
    source: str = "the cluster mapping",
) -> dict[str, str] | None:
    """Cluster of every geo from a mapping or a panel column; None (one market) without either.

    Raises
    ------
    DataError
        A geo missing from the mapping, a missing column, or a geo whose column value changes over time.
    """
    if mapping is not None and column is not None:
        raise ConfigError(
            "give the clusters either as a mapping (--clusters) or a panel column (--cluster-col), not both"
        )
    if mapping is not None:
        missing = [g for g in panel.geos if g not in mapping]
        if missing:
            raise DataError(
                f"{source}: geo '{missing[0]}' of {panel.source} has no cluster"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            )
        return {g: str(mapping[g]) for g in panel.geos}
    if column is not None:
        if column not in panel.data.columns:
            raise DataError(f"{panel.source}: no cluster column '{column}'")
        values = panel.data[column]
        missing = values.isna() | (values.astype(str).str.strip() == "")
        if missing.any():
            row = panel.data[missing].iloc[0]
            raise DataError(
                f"{panel.source}: cluster column '{column}' is empty at geo '{row[panel.geo_col]}', "
                f"date {pd.Timestamp(row[panel.date_col]).date()}"
            )
        per = panel.data.groupby(panel.geo_col)[column].agg(
            lambda v: v.astype(str).unique().tolist()
        )
        for g, vals in per.items():
            if len(vals) != 1:
                raise DataError(
                    f"{panel.source}: geo '{g}' has more than one value in cluster column '{column}'"
                )
        return {str(g): v[0] for g, v in per.items()}
    return None


def graph_roles(graph, channels: Sequence[str], mediator: str) -> tuple[list[str], list[str]]:
    """Channels whose spend points into the mediator, and channels whose spend has a parent (follows demand)."""
    mediated, demand = [], []
    for ch in channels:
        node = SPEND_PREFIX + ch
        if node not in graph:
            continue
        if graph.has_edge(node, mediator):
            mediated.append(ch)
        if any(not str(p).startswith(SPEND_PREFIX) for p in graph.predecessors(node)):
            demand.append(ch)
    return mediated, demand


class _TwoWay:
    """Residual-maker of geo effects plus cluster-by-period effects on a balanced panel (rows date-major)."""

    def __init__(self, cidx: np.ndarray, n_cl: int, T: int, G: int) -> None:
        self.cidx, self.n_cl, self.T, self.G = cidx, n_cl, T, G
        self.members = [np.flatnonzero(cidx == c) for c in range(n_cl)]
        self.dof = G + T * n_cl - n_cl

    def resid(self, v: np.ndarray) -> np.ndarray:
        X = v.reshape(self.T, self.G, -1).astype(float, copy=True)
        X -= X.mean(axis=0, keepdims=True)
        for m in self.members:
            if len(m):
                X[:, m] -= X[:, m].mean(axis=1, keepdims=True)
        return X.reshape(v.shape)


class StructuralModel(BaseEstimator):
    """Queries and signups equations, Bayesian over coefficients and shapes, calibrated on lifts.

    Parameters
    ----------
    channels : sequence of str or None
        Channels (``spend_<channel>`` columns); all by default.
    controls : sequence of str or None
        Covariates in both equations' time structure (the graph's joint controls).
    clusters : mapping geo -> cluster or None
        Market clusters; one market when None (see :func:`resolve_clusters`).
    mediator : str, default="brand_queries"
        The query-volume column. When absent or constant the demand adjustment
        is skipped with a :class:`MediatorWarning` (an error if ``strict_mediator``).
    strict_mediator : bool, default=False
        Raise :class:`DataError` instead of warning when the mediator is unusable.
    mediated_channels, demand_channels : sequence of str or None
        Channels whose spend raises the mediator, and channels whose spend
        follows demand. From ``graph`` when given, else ``ctv, programmatic``
        and ``brand_search`` (the default graph).
    graph : networkx.DiGraph or None
        A normalised causal graph (``causal.graph.normalise``).
    allow_negative : bool, default=False
        Allow negative channel effects.
    prior_scale : float, default=0.25
        Prior sd of a channel's coefficient, in units of the mean outcome per
        unit size (a saturated channel one prior sd strong adds the average
        market's outcome).
    capture_prior_scale : float, default=0.05
        The same for demand-capture channels (spend with a parent in the graph, e.g. branded search).
    pooling : float, default=0.5
        Prior sd of a cluster's deviation relative to the channel's pooled
        coefficient.
    demand_bias_scale : float, default=1.0
        Without the mediator: prior sd of a demand-following channel's
        confounding bias, relative to its observational coefficient.
    decays, half_saturations, shapes : sequences
        The shape grid (geometric decay; Hill half-saturation as multiples of
        the mean positive spend per unit size; Hill exponent).
    fourier : int, default=2
        Yearly Fourier harmonics per cluster in the fixed block.
    time_effects : bool, default=False
        Replace the fixed block's trend, Fourier, weekday and control terms by cluster-by-period
        effects (identification from within-cluster differences only). Measured no better on the
        simulated worlds (docs/calibration.md); kept as an option for panels with unmodelled shocks.
    confidence : float, default=0.9
    n_draws : int, default=200
        Joint posterior draws written to curves.json.
    min_baseline : float, default=0.05
        Plausibility: the channels' posterior-median total contribution may not
        exceed observed outcome times ``1 - min_baseline``.
    seed : int, default=0

    Attributes
    ----------
    draws_ : dict
        ``shape`` (n_draws, K) indices into ``grid_``; ``gamma``, ``beta_q`` (n_draws, K, C); ``kappa`` (n_draws, C).
    contributions_ : DataFrame
        Per channel: direct, mediated, total (posterior means), lo, hi of total, spend, lifted.
    identification_ : dict channel -> dict
    notes_ : list of str
    """

    def __init__(
        self,
        *,
        channels=None,
        controls=None,
        clusters=None,
        mediator: str = "brand_queries",
        strict_mediator: bool = False,
        mediated_channels=None,
        demand_channels=None,
        graph=None,
        allow_negative: bool = False,
        prior_scale: float = 0.25,
        capture_prior_scale: float = 0.05,
        pooling: float = 0.5,
        demand_bias_scale: float = 1.0,
        decays: Sequence[float] = DECAYS,
        half_saturations: Sequence[float] = HALF_SATURATION,
        shapes: Sequence[float] = SHAPES,
        fourier: int = 2,
        time_effects: bool = False,
        confidence: float = 0.9,
        n_draws: int = 200,
        min_baseline: float = 0.05,
        seed: int = 0,
    ) -> None:
        self.channels = channels
        self.controls = controls
        self.clusters = clusters
        self.mediator = mediator
        self.strict_mediator = strict_mediator
        self.mediated_channels = mediated_channels
        self.demand_channels = demand_channels
        self.graph = graph
        self.allow_negative = allow_negative
        self.prior_scale = prior_scale
        self.capture_prior_scale = capture_prior_scale
        self.pooling = pooling
        self.demand_bias_scale = demand_bias_scale
        self.decays = decays
        self.half_saturations = half_saturations
        self.shapes = shapes
        self.fourier = fourier
        self.time_effects = time_effects
        self.confidence = confidence
        self.n_draws = n_draws
        self.min_baseline = min_baseline
        self.seed = seed

    # -- fit -------------------------------------------------------------------
    def fit(self, panel: Panel, lifts: Sequence[Lift] = ()) -> StructuralModel:
        """Fit both equations and the lifts; returns ``self``.

        Raises
        ------
        DataError
            Bad lifts, a mediator that ``strict_mediator`` requires, or a fit
            that gives the channels more outcome than the panel holds.
        """
        self._check_params()
        rng = np.random.default_rng(self.seed)
        channels = list(self.channels) if self.channels is not None else list(panel.channels)
        if not channels:
            raise DataError(f"{panel.source}: no spend_<channel> column to fit curves on")
        for ch in channels:
            panel.spend_column(ch)
        lifts = list(lifts)
        for lf in lifts:
            validate_lift(lf, panel)
            if lf.channel not in channels:
                raise DataError(
                    f"{lf.source}: lift channel '{lf.channel}' is not among the modelled channels"
                )
        T, G = len(panel.dates), len(panel.geos)
        if T < 30:
            raise DataError(f"{panel.source}: {T} periods; response curves need at least 30")
        y = panel.wide().to_numpy().astype(float)
        geo_mean = y.mean(axis=0)
        if (geo_mean <= 0).any():
            g = panel.geos[int(np.flatnonzero(geo_mean <= 0)[0])]
            raise DataError(
                f"{panel.source}: geo '{g}' has no positive '{panel.y}'; its market size cannot be measured"
            )
        size = geo_mean / geo_mean.mean()
        geo_cluster = resolve_clusters(panel, self.clusters) if self.clusters is not None else None
        clusters = sorted(set(geo_cluster.values())) if geo_cluster else [None]
        cidx = (
            np.array([clusters.index(geo_cluster[g]) for g in panel.geos])
            if geo_cluster
            else np.zeros(G, int)
        )
        C, K = len(clusters), len(channels)
        notes: list[str] = []

        # Roles from the graph (or the default graph's), and the mediator.
        if self.graph is not None:
            mediated, demand = graph_roles(self.graph, channels, self.mediator)
        else:
            mediated = [c for c in ("ctv", "programmatic") if c in channels]
            demand = [c for c in ("brand_search",) if c in channels]
        if self.mediated_channels is not None:
            mediated = [c for c in self.mediated_channels if c in channels]
        if self.demand_channels is not None:
            demand = [c for c in self.demand_channels if c in channels]
        capture = list(demand)
        Q = None
        if self.mediator in panel.data.columns:
            Qw = panel.wide(self.mediator).to_numpy().astype(float)
            if not np.isfinite(Qw).all():
                raise DataError(
                    f"{panel.source}: mediator column '{self.mediator}' has missing or non-finite values"
                )
            if np.ptp(Qw) > 0:
                Q = Qw
        if Q is None:
            why = "is constant" if self.mediator in panel.data.columns else "is not in the panel"
            msg = (
                f"mediator column '{self.mediator}' {why}: the demand adjustment (signups given branded queries) "
                f"could not be made; {', '.join(demand) or 'no channel'} "
                f"{'gets' if len(demand) == 1 else 'get'} a confounding-bias prior and wide intervals, "
                f"and mediated effects are not separated from direct ones"
            )
            if self.strict_mediator:
                raise DataError(f"{panel.source}: {msg}")
            warnings.warn(msg, MediatorWarning, stacklevel=2)
            notes.append(msg)
            mediated = []
        else:
            demand = []
        controls = [c for c in (self.controls or []) if c != self.mediator]
        panel.require_columns(controls)

        # Shape grid per channel and the saturated-adstock features of every candidate.
        spend = {ch: panel.wide(panel.spend_column(ch)).to_numpy().astype(float) for ch in channels}
        grid: dict[str, list[Shape]] = {}
        for ch in channels:
            x = spend[ch] / size
            pos = x[x > 0]
            ref = float(pos.mean()) if pos.size else 1.0
            # Demand-capture spend (it follows same-day queries) gets short carryover only: a long adstock of
            # it is a smoothed demand proxy, which would hand it organic demand the queries measure with noise.
            decays = CAPTURE_DECAYS[: len(self.decays)] if ch in capture else self.decays
            grid[ch] = [
                Shape(d, ref * m, n)
                for d in decays
                for m in self.half_saturations
                for n in self.shapes
            ]
        n_cand = len(grid[channels[0]])
        if self.time_effects:
            proj = _TwoWay(cidx, C, T, G)
        else:
            block = fixed_block(panel, controls, cidx, C, fourier=self.fourier, holdout=0)
            proj = block.projector(np.ones(T * G, dtype=bool))
        # The demand proxy: the queries and their exponential smoothings. Branded search's adstock is a
        # smoothing of past queries; without these its lags would proxy the organic demand that today's
        # (noisy) query count misses.
        qcols = [geometric_adstock(Q / size, d) for d in Q_SMOOTHING] if Q is not None else []
        base_cols = [y / size] + qcols
        nb = len(base_cols)
        X = np.empty((T * G, nb + K * n_cand), dtype=np.float32)
        X[:, :nb] = proj.resid(np.column_stack([v.ravel() for v in base_cols]))
        # Contribution of a unit coefficient: sum_t s_g f(g, t), per geo and candidate.
        unit = np.empty((K, n_cand, G))
        for k, ch in enumerate(channels):
            feats = np.empty((T, G, n_cand))
            for j, sh in enumerate(grid[ch]):
                feats[:, :, j] = _saturated(spend[ch] / size, sh)
            unit[k] = (feats.sum(axis=0) * size[:, None]).T
            X[:, nb + k * n_cand : nb + (k + 1) * n_cand] = proj.resid(feats.reshape(T * G, n_cand))
        # Per-cluster Gram matrices: every shape combination's posterior comes from these.
        rows_c = np.repeat(cidx[None, :], T, axis=0).ravel()
        gram = np.zeros((C, X.shape[1], X.shape[1]))
        for c in range(C):
            idx = np.flatnonzero(rows_c == c)
            for s in range(0, len(idx), 20000):
                Xi = X[idx[s : s + 20000]].astype(float)
                gram[c] += Xi.T @ Xi
        self._X, self._nb = X, nb
        dof = T * G - proj.dof

        self.channels_, self.clusters_, self.controls_ = channels, clusters, controls
        self.mediated_, self.demand_ = mediated, demand
        self.geos_, self.dates_, self.size_ = (
            list(panel.geos),
            panel.dates,
            pd.Series(size, index=panel.geos),
        )
        self.geo_cluster_ = geo_cluster or {g: None for g in panel.geos}
        self.cluster_idx_ = cidx
        self.outcome_, self.period_, self.has_mediator_ = panel.y, panel.period_name, Q is not None
        self.grid_ = grid
        self.capture_ = capture
        self._gram, self._unit, self._spend, self._y, self._Q = gram, unit, spend, y, Q
        self._T, self._G, self._C, self._K, self._n_cand, self._dof = T, G, C, K, n_cand, dof
        self._quarter = QUARTER_PERIODS[panel.period_name]
        self._layout()
        self._priors(y / size, Q / size if Q is not None else None)

        # Residual variance and autocorrelation at a first guess, then the mode, then again.
        mode = np.full(K, n_cand // 2)
        self._noise(mode, lifts=[])
        self._lift_rows = []
        mode, cond = self._search(mode, lifts=[])
        self._noise(mode, lifts=[])
        self.uncal_mean_ = self._posterior(mode, [])[0]
        kappa_hat = (
            self.uncal_mean_[self._ix["kappa"]].sum(axis=0) if Q is not None else np.zeros(C)
        )
        self._lift_ch = [lf.channel for lf in lifts]
        self._lift_rows = [self._lift_row(lf, kappa_hat) for lf in lifts]
        use = list(range(len(lifts)))
        mode, cond = self._search(mode, lifts=use)
        self.mode_ = mode
        self._robust_scale(mode, use)
        self._sample(cond, use, rng)
        self.lifts_ = lifts
        self._summaries(lifts, notes)
        return self

    # -- layout and priors -----------------------------------------------------
    def _layout(self) -> None:
        C, K = self._C, self._K
        ix, p = {}, 0
        nk = len(Q_SMOOTHING) if self._Q is not None else 0
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
        self._ix, self._p = ix, p
        pos = np.zeros(p, dtype=bool)
        if not self.allow_negative:
            pos[ix["gamma"].ravel()] = True
            pos[ix["beta_q"].ravel()] = True
        self._positive = pos

    def _priors(self, ys: np.ndarray, qs: np.ndarray | None) -> None:
        """Gaussian prior precision: channel blocks pooled across clusters; kappa nearly flat."""
        C = self._C
        prec = np.zeros((self._p, self._p))
        self._tau = {"gamma": self.prior_scale * float(ys.mean())}
        if qs is not None:
            self._tau["beta_q"] = self.prior_scale * float(qs.mean())
            kap = 100.0 * float(ys.mean() / qs.mean())
            for i in self._ix["kappa"].ravel():
                prec[i, i] = 1.0 / kap**2

        def block(tau: float) -> np.ndarray:
            cov = tau**2 * np.ones((C, C)) + (self.pooling * tau) ** 2 * np.eye(C)
            return np.linalg.inv(cov)

        # Demand-capture channels (spend following queries, e.g. branded search) get their own prior scale.
        self._tau_k = np.array(
            [
                (self.capture_prior_scale if ch in self.capture_ else self.prior_scale)
                * float(ys.mean())
                for ch in self.channels_
            ]
        )
        for k, idx in enumerate(self._ix["gamma"]):
            prec[np.ix_(idx, idx)] = block(self._tau_k[k])
        for idx in self._ix["beta_q"]:
            prec[np.ix_(idx, idx)] = block(self._tau["beta_q"])
        self._prior_prec = prec

    # -- the linear-Gaussian core ------------------------------------------------
    def _cols(self, combo: np.ndarray) -> np.ndarray:
        return np.array([self._nb + k * self._n_cand + int(j) for k, j in enumerate(combo)])

    def _likelihood(self, combo: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Observational precision and rhs over theta for a shape combination, and the constant y'y terms."""
        p, C = self._p, self._C
        P, r = np.zeros((p, p)), np.zeros(p)
        cols = self._cols(combo)
        ix = self._ix
        has_q = self._Q is not None
        wy, wq = self._wy, self._wq
        for c in range(C):
            g = self._gram[c]
            # signups equation: columns [Q] + channel features (+ bias copies of demand channels)
            ycols = list(range(1, self._nb)) + list(cols) + [cols[k] for k in self._dem_k]
            ypar = list(ix["kappa"][:, c]) + list(ix["gamma"][:, c]) + list(ix["bias"][:, c])
            sub = g[np.ix_(ycols, ycols)]
            P[np.ix_(ypar, ypar)] += wy * sub
            r[ypar] += wy * g[ycols, 0]
            if has_q and self._med_k:
                qcols = [cols[k] for k in self._med_k]
                qpar = list(ix["beta_q"][:, c])
                P[np.ix_(qpar, qpar)] += wq * g[np.ix_(qcols, qcols)]
                r[qpar] += wq * g[qcols, 1]
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
        """Posterior mean, Cholesky factor of the precision, and log marginal likelihood (up to a constant)."""
        P, r = self._likelihood(combo)
        P = P + self._prior_prec
        P[np.diag_indices(self._p)] += self._bias_prior()
        for i in use:
            row, val, sd = self._lift_rows[i]
            rr = row[:, combo[self.channels_.index(self._lift_ch[i])]]
            P += np.outer(rr, rr) / sd**2
            r = r + rr * val / sd**2
        L = np.linalg.cholesky(P)
        z = np.linalg.solve(L, r)
        mean = np.linalg.solve(L.T, z)
        logml = 0.5 * float(z @ z) - float(np.log(np.diag(L)).sum())
        return mean, L, logml

    def _noise(self, combo: np.ndarray, lifts: Sequence[int]) -> None:
        """Residual variance and lag-one autocorrelation of each equation at ``combo``: the tempering weights."""
        self._wy = self._wq = 1.0
        self._bias_tau = np.ones(len(self._dem_k))
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
        coef, *_ = np.linalg.lstsq(design, yv, rcond=None)
        ry = yv - design @ coef
        out = {"y": ry}
        if has_q and self._med_k:
            dq = self._split(feats[:, self._med_k])
            qv = self._X[:, 1].astype(float)
            cq, *_ = np.linalg.lstsq(dq, qv, rcond=None)
            out["q"] = qv - dq @ cq
        stats_ = {}
        for name, res in out.items():
            R = res.reshape(T, G)
            rho = (
                float(np.clip((R[1:] * R[:-1]).sum() / (R * R).sum(), 0.0, 0.95)) if T > 2 else 0.0
            )
            sigma2 = float(res @ res) / max(self._dof - design.shape[1], 1)
            vif = (1 + rho) / (1 - rho)
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

    def _split(self, M: np.ndarray) -> np.ndarray:
        """Columns split by cluster (one copy per cluster, zero outside it)."""
        if self._C == 1:
            return M
        rc = np.repeat(self.cluster_idx_[None, :], self._T, axis=0).ravel()
        return np.column_stack([np.where((rc == c)[:, None], M, 0.0) for c in range(self._C)])

    def _search(self, combo: np.ndarray, lifts: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Coordinate ascent of the marginal likelihood over the shape grid; conditional log weights at the mode."""
        combo = combo.copy()
        cond = np.zeros((self._K, self._n_cand))
        for _ in range(2):
            for k in range(self._K):
                vals = np.empty(self._n_cand)
                for j in range(self._n_cand):
                    trial = combo.copy()
                    trial[k] = j
                    vals[j] = self._posterior(trial, lifts)[2]
                combo[k] = int(np.argmax(vals))
                cond[k] = vals
        return combo, cond

    # -- lifts -------------------------------------------------------------------
    def _lift_row(self, lf: Lift, kappa: np.ndarray) -> tuple[np.ndarray, float, float]:
        """Loadings (p, n_cand) of a lift's predicted total incremental on theta, for each shape of its channel."""
        k = self.channels_.index(lf.channel)
        index = {g: i for i, g in enumerate(self.geos_)}
        cols = np.array([index[g] for g in lf.treated])
        dates = self.dates_
        window = np.flatnonzero((dates >= pd.Timestamp(lf.start)) & (dates <= pd.Timestamp(lf.end)))
        if window.size == 0:
            raise DataError(f"{lf.source}: lift window {lf.start}..{lf.end} holds no panel date")
        x = self._spend[lf.channel]
        cf = counterfactual_spend(x, window, cols, lf)[:, cols]
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
        return row, lf.incremental, lf.sd

    # -- sampling ----------------------------------------------------------------
    def _sample(self, cond: np.ndarray, use: Sequence[int], rng: np.random.Generator) -> None:
        """Shapes by sampling-importance-resampling over the grid, then truncated-normal coefficients."""
        N, K = self.n_draws, self._K
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
            logw[u] = post[2] - logq[np.arange(K), combo].sum()
        w = np.exp(logw[inv] - logw[inv].max())
        w /= w.sum()
        self.shape_ess_ = float(1.0 / (w**2).sum())
        # Systematic resampling keeps the draws' shape mix close to the weights.
        pos = (rng.random() + np.arange(N)) / N
        pick = np.minimum(np.searchsorted(np.cumsum(w), pos), n_prop - 1)
        thetas = np.empty((N, self._p))
        for i, j in enumerate(pick):
            mean, L, _ = cache[inv[j]]
            thetas[i] = self._truncated_draw(mean, L, rng)
        combos = uniq[inv[pick]]
        self.draws_ = {"shape": combos, "theta": thetas}

    def _robust_scale(self, combo: np.ndarray, use: Sequence[int]) -> None:
        """Per-parameter widening of the posterior to a geo-clustered sandwich (Mueller 2013).

        At the mode's shapes: the posterior covariance ``S`` (tempered likelihood, prior, lifts) and the
        sandwich ``S B S`` with ``B`` the outer products of each geo's summed likelihood scores (robust to
        any autocorrelation within a geo and to misspecification of the mean). Where the sandwich
        variance is larger, the draws are scaled up by the square root of the ratio; never narrowed.
        """
        T, G, C = self._T, self._G, self._C
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
        rc = np.repeat(self.cluster_idx_[None, :], T, axis=0).ravel()
        scores = np.zeros((G, self._p))
        geo = np.tile(np.arange(G), T)
        for c in range(C):
            rows = rc == c
            pred = Dy[rows] @ mean[ypar[c]]
            r = (yv[rows] - pred) * self._wy
            sc = Dy[rows] * r[:, None]
            np.add.at(scores, (geo[rows][:, None], np.array(ypar[c])[None, :]), sc)
            if has_q and self._med_k:
                Dq = feats[rows][:, self._med_k]
                qpar = list(ix["beta_q"][:, c])
                rq = (self._X[rows, 1].astype(float) - Dq @ mean[qpar]) * self._wq
                np.add.at(scores, (geo[rows][:, None], np.array(qpar)[None, :]), Dq * rq[:, None])
        S = np.linalg.inv(L @ L.T)
        V = S @ (scores.T @ scores) @ S
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

    # -- summaries -----------------------------------------------------------------
    def total_coef(self, theta: np.ndarray) -> np.ndarray:
        """(..., K, C) total effect coefficient per unit size, gamma + kappa beta_q, from theta rows."""
        g = theta[..., self._ix["gamma"]]
        tot = g.copy()
        if self._med_k:
            kap = theta[..., self._ix["kappa"]].sum(axis=-2)
            for j, k in enumerate(self._med_k):
                tot[..., k, :] += kap * theta[..., self._ix["beta_q"][j]]
        return tot

    def _line_contrib(
        self, theta: np.ndarray, combos: np.ndarray, part: str = "total"
    ) -> np.ndarray:
        """(N, K, G) contribution per draw, channel and geo."""
        th = np.atleast_2d(theta)
        combos = np.atleast_2d(combos)
        if part == "total":
            coef = self.total_coef(th)
        else:
            coef = th[:, self._ix["gamma"]]
            if part == "mediated":
                coef = self.total_coef(th) - coef
        out = np.empty((len(th), self._K, self._G))
        for k in range(self._K):
            u = self._unit[k][combos[:, k]]  # (N, G)
            out[:, k] = u * coef[:, k][:, self.cluster_idx_]
        return out

    def _summaries(self, lifts: Sequence[Lift], notes: list[str]) -> None:
        th, combos = self.draws_["theta"], self.draws_["shape"]
        a = (1 - self.confidence) / 2
        tot = self._line_contrib(th, combos)
        direct = self._line_contrib(th, combos, "direct")
        self._contrib_draws = tot
        ch_tot = tot.sum(axis=2)  # (N, K)
        ch_dir = direct.sum(axis=2)
        observed = float(self._y.sum())
        total_median = float(np.median(ch_tot.sum(axis=1)))
        if total_median > (1 - self.min_baseline) * observed:
            raise DataError(
                f"fit refused: the channels' total contribution {total_median:,.0f} exceeds the observed "
                f"{self.outcome_} {observed:,.0f} less a {self.min_baseline:.0%} baseline; the curves are not "
                "plausible (check the mediator, controls and spend columns)"
            )
        unc = self._line_contrib(self.uncal_mean_, self.mode_[None, :])[0].sum(axis=1)
        lifted = {lf.channel for lf in lifts}
        rows = []
        for k, ch in enumerate(self.channels_):
            spend = float(self._spend[ch].sum())
            lo, hi = np.quantile(ch_tot[:, k], [a, 1 - a])
            rows.append(
                {
                    "channel": ch,
                    "direct": float(ch_dir[:, k].mean()),
                    "mediated": float((ch_tot[:, k] - ch_dir[:, k]).mean()),
                    "total": float(ch_tot[:, k].mean()),
                    "lo": float(lo),
                    "hi": float(hi),
                    "uncalibrated": float(max(unc[k], 0.0) if not self.allow_negative else unc[k]),
                    "spend": spend,
                    "lifted": ch in lifted,
                }
            )
        self.contributions_ = pd.DataFrame(rows)
        # Identification: posterior sd of the pooled total coefficient against its prior sd.
        coef = self.total_coef(th)
        w = np.array([self.size_.to_numpy()[self.cluster_idx_ == c].sum() for c in range(self._C)])
        pooled = (coef * w).sum(axis=2) / w.sum()
        ident = {}
        for k, ch in enumerate(self.channels_):
            # sd of the (half-normal when effects are positive) prior of the pooled coefficient
            trunc = 1.0 if self.allow_negative else np.sqrt(1 - 2 / np.pi)
            prior_sd = trunc * self._tau_k[k] * np.sqrt(1 + self.pooling**2 / self._C)
            if k in self._med_k:
                kap = float(th[:, self._ix["kappa"]].sum(axis=1).mean())
                prior_sd = float(np.hypot(prior_sd, trunc * kap * self._tau["beta_q"]))
            post_sd = float(pooled[:, k].std())
            r = self.contributions_.iloc[k]
            ident[ch] = {
                "posterior_sd_over_prior_sd": post_sd / prior_sd,
                "kl_normal_approx": float(
                    np.log(prior_sd / max(post_sd, 1e-300))
                    + (post_sd**2 + pooled[:, k].mean() ** 2) / (2 * prior_sd**2)
                    - 0.5
                ),
                "lift_checked": bool(r["lifted"]),
                "lifts": [lf.name for lf in lifts if lf.channel == ch],
                "interval_width_per_spend": float((r["hi"] - r["lo"]) / r["spend"])
                if r["spend"]
                else None,
                "demand_adjusted": ch not in self.demand_ or self.has_mediator_,
            }
        self.identification_ = ident
        sy, ry, vy = self.noise_["y"]
        notes.append(
            f"Signups equation: residual autocorrelation {ry:.2f}, likelihood tempered by {vy:.2f} "
            "(AR(1) effective sample size)."
        )
        if "q" in self.noise_:
            notes.append(
                f"Queries equation: residual autocorrelation {self.noise_['q'][1]:.2f}, tempered by "
                f"{self.noise_['q'][2]:.2f}."
            )
        notes.append(
            f"Shapes averaged over a {self._n_cand}-point grid per channel by marginal likelihood "
            f"(importance-resampling effective size {self.shape_ess_:.0f} of {4 * self.n_draws} proposals)."
        )
        if self._C > 1 or self._G > 1:
            notes.append(
                "Per-market lines share their cluster's coefficient per unit of market size (pooled within "
                "the cluster), scaled by each market's size; clusters are partially pooled toward the channel."
            )
        self.notes_ = notes

    def _check_params(self) -> None:
        if not 0 < self.confidence < 1:
            raise ConfigError(
                f"StructuralModel: confidence must be in (0, 1), got {self.confidence}"
            )
        if self.n_draws < 10:
            raise ConfigError(f"StructuralModel: n_draws must be at least 10, got {self.n_draws}")
        for name in ("prior_scale", "capture_prior_scale", "pooling", "demand_bias_scale"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"StructuralModel: {name} must be > 0, got {getattr(self, name)}")
        if not self.decays or any(not 0 <= d < 1 for d in self.decays):
            raise ConfigError(
                f"StructuralModel: decays must lie in [0, 1), got {list(self.decays)}"
            )
        if not 0 <= self.min_baseline < 1:
            raise ConfigError(
                f"StructuralModel: min_baseline must be in [0, 1), got {self.min_baseline}"
            )

    # -- outputs -------------------------------------------------------------------
    def summary(self) -> pd.DataFrame:
        """Per channel: direct, mediated and total contribution with the interval, spend, ROAS."""
        check_is_fitted(self, "draws_")
        df = self.contributions_.set_index("channel")
        df["roas"] = df["total"] / df["spend"].replace(0, np.nan)
        return df

    def conf_int(self) -> pd.DataFrame:
        """Per channel: the ``confidence`` interval of its total contribution (columns lo, hi)."""
        check_is_fitted(self, "draws_")
        return self.contributions_.set_index("channel")[["lo", "hi"]]

    def curve_draws(self, channel: str, spend: np.ndarray) -> np.ndarray:
        """(n_draws, len(spend)) steady-state total response of all markets to a total spend per period,
        spread over the markets in proportion to their size (one row per joint posterior draw)."""
        check_is_fitted(self, "draws_")
        k = self.channels_.index(channel)
        th, combos = self.draws_["theta"], self.draws_["shape"]
        size = self.size_.to_numpy()
        S = np.array([size[self.cluster_idx_ == c].sum() for c in range(self._C)])
        B = (self.total_coef(th)[:, k, :] * S).sum(axis=1)
        shapes = [self.grid_[channel][j] for j in combos[:, k]]
        K = np.array([sh.half_saturation for sh in shapes])[:, None]
        n = np.array([sh.shape for sh in shapes])[:, None]
        z = np.asarray(spend, float)[None, :] / size.sum()
        return R.value("hill", z, {"beta": B[:, None], "half_saturation": K, "shape": n})

    def plot(self, channel: str, *, ax=None, show: bool = False):
        """Steady-state response of a channel (all markets), posterior median and band, current spend marked.

        Returns
        -------
        (fig, ax)
        """
        import matplotlib.pyplot as plt

        check_is_fitted(self, "draws_")
        fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 4))
        x = self._spend[channel]
        cur = float(x[-self._quarter :].sum(axis=1).mean())
        xs = np.linspace(0.0, max(2.5 * cur, 1.0), 120)
        ys = self.curve_draws(channel, xs)
        a = (1 - self.confidence) / 2
        lo, med, hi = np.quantile(ys, [a, 0.5, 1 - a], axis=0)
        ax.fill_between(xs, lo, hi, color="#2f5fa7", alpha=0.2, label=f"{self.confidence:.0%} band")
        ax.plot(xs, med, color="#2f5fa7", lw=1.6, label="posterior median")
        ax.axvline(cur, color="grey", lw=0.8, ls=":", label="current spend")
        title = f"{channel}: total response (direct + through branded queries)"
        return finish_curve_axes(fig, ax, channel, self.period_, self.outcome_, title, show)

    def to_dict(self) -> dict:
        return self.to_curves()

    def to_curves(self) -> dict:
        """The curves.json dict: per (channel, market) lines with draws, cluster aggregates, identification."""
        check_is_fitted(self, "draws_")
        from allocation.structural_curves import curves_dict

        return curves_dict(self)
