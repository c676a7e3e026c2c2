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
conjugate. Each equation's likelihood is tempered by the ratio of a
group-clustered sandwich variance to the iid one (groups: market cluster x
eight-week block; Ribatet, Cooley & Davison 2012), so intervals and shape
weights do not treat persistent, regionally shared deviations as independent
information; a per-parameter sandwich on the same groups widens any
coefficient still too narrow (Mueller 2013).
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

Confounding the panel cannot rule out. Each mediated channel gets a bias
:math:`b^{q}_{kc}` next to :math:`\beta^{q}_{kc}` in the queries equation's
likelihood, with a prior from negative-control channels (in the graph, neither
into the queries nor after demand): their spurious query contributions, fitted
beside the mediated channels, set its mean and sd (Lipsitch et al. 2010;
Schuemie et al. 2018). Lifts load on :math:`\beta^{q}` only and separate the
two. The draws are split equally between two fixed blocks (smooth seasonality
and trend, or cluster-by-period effects; Draper 1995): half are centred at the
other block's posterior mean at the mode's shapes.

Branded search given the queries. Its spend follows the queries, so given them it moves only by its own
noise: the panel measures its slope at current spend, not its curve down to zero. Where the queries
explain at least half of its within-market log-spend variance, its shapes weigh by the prior and its
lifts (not the panel's marginal likelihood) and its clusters are pooled tightly
(``capture_shape_weights``, ``capture_pooling``), so its interval carries what the panel cannot tell.

Without a usable mediator column the adjustment for demand cannot be made:
the model says so (a warning and a note) and each demand-following channel
(spend with a parent in the graph, e.g. branded search) gets a confounding bias
:math:`b_{kc}` in the observational likelihood, :math:`N(0, (\text{scale}\,|\hat\gamma|)^2)`,
so its interval spans what the panel cannot tell apart. That channel's spend
(cost per query times queries) then stands in for the queries as their noisy
proxy, so the mediated channels' paths through them are still modelled.

References
----------
Chen, A., Chan, D., Perry, M., Jin, Y., Sun, Y., Wang, Y., & Koehler, J. (2018).
Bias correction for paid search in media mix modeling. Google Inc.
Jin, Y., Wang, Y., Sun, Y., Chan, D., & Koehler, J. (2017). Bayesian methods for
media mix modeling with carryover and shape effects. Google Inc.
Ribatet, M., Cooley, D., & Davison, A. C. (2012). Bayesian inference from composite likelihoods,
with an application to spatial extremes. Statistica Sinica, 22, 813-845.
Mueller, U. K. (2013). Risk of Bayesian inference in misspecified models, and the sandwich
covariance matrix. Econometrica, 81(5), 1805-1849.
Geweke, J. (1991). Efficient simulation from the multivariate normal and
Student-t distributions subject to linear constraints.
Lipsitch, M., Tchetgen Tchetgen, E., & Cohen, T. (2010). Negative controls: a tool for detecting
confounding and bias in observational studies. Epidemiology, 21(3), 383-388.
Schuemie, M. J., Hripcsak, G., Ryan, P. B., Madigan, D., & Suchard, M. A. (2018). Empirical confidence
interval calibration for population-level effect estimation studies in observational healthcare data.
PNAS, 115(11), 2571-2577.
Draper, D. (1995). Assessment and propagation of model uncertainty. JRSS B, 57(1), 45-97.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from allocation.calibration_lifts import Lift, validate_lifts
from allocation.fixed_effects import fixed_block
from allocation.response_model import QUARTER_PERIODS
from allocation.structural_inference import StructuralInference
from allocation.structural_inputs import (  # noqa: F401  (re-exported: the public import path)
    BLOCK_PERIODS,
    CAPTURE_DECAYS,
    DECAYS,
    HALF_SATURATION,
    PRIOR_ON,
    Q_LEADS,
    Q_SMOOTHING,
    SHAPE_PRIORS,
    SHAPES,
    MediatorWarning,
    Shape,
    _saturated,
    _TwoWay,
    demand_proxy,
    graph_roles,
    resolve_clusters,
    shape_log_prior,
)
from allocation.structural_result import StructuralResults
from causal.base import BaseEstimator
from causal.errors import ConfigError, DataError
from causal.panel import Panel


class StructuralModel(StructuralInference, StructuralResults, BaseEstimator):
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
    early_windows : bool, default=False
        Also enter each lift's first week given its total (readout.json ``early``) as a term on the
        channel's carryover. Off by default: the term is measured calibrated but biased (its
        standardised error's mean -0.39 over 24 readouts, 2.7 standard errors), and in the closed
        loops it moved branded search's end credit (docs/calibration.md, "The readout's first week").
    prior_scale : float, default=0.25
        Prior sd of a channel's coefficient, in units of the mean outcome per
        unit size (a saturated channel one prior sd strong adds the average
        market's outcome), at the grid's centre shape (half-saturation at the
        mean spend, exponent 1).
    prior_on : {"coefficient", "marginal_return"}, default="coefficient"
        What that prior holds the same across shapes. ``"coefficient"``: the Hill
        coefficient, whose prior is tighter on what the panel measures for a steep
        shape than for a flat one, so the marginal likelihood favours flat shapes
        where the panel cannot tell them apart (issue 14, docs/backtest.md, session
        10: programmatic drifts to the grid's largest half-saturation).
        ``"marginal_return"``: the channel's marginal return at its mean spend (the
        coefficient's sd scales inversely with the shape's slope there; demand-capture
        channels whose shapes weigh by the prior keep the coefficient prior), so the
        shape weights compare shapes by fit and lifts: the curvature a plan follows
        comes out closer to the world's, and the daily loop plans on it
        (:class:`allocation.backtest.DailyLoop`). Not calibrate's default: on the
        credit study it changes credit little (docs/backtest.md, session 10), and
        the credit figures the documentation states rest on the coefficient prior.
    capture_prior_scale : float, default=0.05
        The same for demand-capture channels (spend with a parent in the graph, e.g. branded search).
    capture_shape_weights : {"prior", "likelihood"}, default="prior"
        How a demand-capture channel's adstock and saturation shapes are weighted. Given the queries,
        its spend moves only by its own noise: where the queries explain at least half of its spend's
        variation (``structural_inference.QUERY_BOUND``; a note says so) the panel measures its slope
        at current spend, not its curve down to zero, so by default its shapes weigh by the prior (and
        any lift on it), not by the panel's marginal likelihood, and its interval carries the curve's
        uncertainty. ``"likelihood"`` weighs them by the panel like every other channel's (and pools
        its clusters by ``pooling``).
    pooling : float, default=0.5
        Prior sd of a cluster's deviation relative to the channel's pooled
        coefficient.
    capture_pooling : float, default=0.1
        ``pooling`` for demand-capture channels whose spend the queries mostly explain (see
        ``capture_shape_weights``; otherwise ``pooling``). Given the queries the panel cannot tell their
        clusters apart (each cluster's posterior sd is about the prior's cluster spread), and with
        effects kept non-negative, loosely pooled clusters each truncated at zero add up to a total
        whose interval is held away from zero even when every cluster's likelihood lies below it
        (docs/calibration.md section 0).
    demand_bias_scale : float, default=1.0
        Without the mediator: prior sd of a demand-following channel's
        confounding bias, relative to its observational coefficient.
    negative_control_mean : bool, default=True
        With the mediator: centre the prior of each mediated channel's confounding bias in the queries
        equation at the negative-control channels' mean spurious query contribution (a bias
        correction, as empirical calibration does); False centres it at zero. Its sd is their root
        mean square either way.
    specification_average : bool, default=True
        Split the posterior draws equally between the two fixed blocks (the smooth one of trend,
        Fourier, weekday and controls, and cluster-by-period effects), so the intervals carry how far
        the two defensible adjustments for organic demand disagree (see ``_specification_shift``).
    spend_proxy : bool, default=True
        Without a usable mediator column: model the paths through the queries with the first
        demand channel's spend (branded search: cost per query times queries) as their noisy proxy,
        rather than dropping them (the demand channels keep their confounding-bias prior).
    decays, half_saturations, shapes : sequences
        The shape grid (geometric decay; Hill half-saturation as multiples of
        the mean positive spend per unit size; Hill exponent).
    shape_prior : {"uniform", "meridian"}, default="uniform"
        The prior over the grid's points. ``"uniform"``: every point equally likely, so the shapes
        weigh by marginal likelihood alone. ``"meridian"``: Meridian's default Hill priors for paid
        media (half-saturation TruncatedNormal(0.8, 0.8) on [0.1, 10] times the typical spend, each
        multiple weighted by the mass of its cell of the grid; exponent 1), for every channel but a
        query-bound demand-capture one (its shapes weigh by the prior and its lifts alone, and its
        spend is set by the queries, not a media plan: its grid stays uniform). Where
        a year of panel cannot tell a channel's curvature (its signal small against the organic
        noise), the uniform grid's draws spread over shapes straighter than most (half-saturations
        of 2-4 times spend, exponents above 1) and the marginal return at current spend comes out
        too high; the daily loop plans on this prior (:class:`allocation.backtest.DailyLoop`,
        docs/backtest.md, session 13). Not the default: its credit intervals cover the truth less
        often (82-86% at 90% on the credit study, docs/calibration.md).
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
        early_windows: bool = False,
        prior_scale: float = 0.25,
        prior_on: str = "coefficient",
        capture_prior_scale: float = 0.05,
        capture_shape_weights: str = "prior",
        pooling: float = 0.5,
        capture_pooling: float = 0.1,
        demand_bias_scale: float = 1.0,
        negative_control_mean: bool = True,
        specification_average: bool = True,
        spend_proxy: bool = True,
        decays: Sequence[float] = DECAYS,
        half_saturations: Sequence[float] = HALF_SATURATION,
        shapes: Sequence[float] = SHAPES,
        shape_prior: str = "uniform",
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
        self.early_windows = early_windows
        self.prior_scale = prior_scale
        self.prior_on = prior_on
        self.capture_prior_scale = capture_prior_scale
        self.capture_shape_weights = capture_shape_weights
        self.pooling = pooling
        self.capture_pooling = capture_pooling
        self.demand_bias_scale = demand_bias_scale
        self.negative_control_mean = negative_control_mean
        self.specification_average = specification_average
        self.spend_proxy = spend_proxy
        self.decays = decays
        self.half_saturations = half_saturations
        self.shapes = shapes
        self.shape_prior = shape_prior
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
        validate_lifts(lifts, panel)
        for lf in lifts:
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
        proxy = None
        if Q is None:
            why = "is constant" if self.mediator in panel.data.columns else "is not in the panel"
            # Spend that follows the queries (cost per query times queries) measures them with its own
            # noise: it stands in for them, so the paths through the queries are still modelled, but the
            # demand adjustment stays incomplete and the demand channels keep their bias prior.
            if self.spend_proxy and demand and mediated:
                proxy = demand[0]
                Qp = panel.wide(panel.spend_column(proxy)).to_numpy().astype(float)
                Q = Qp if np.ptp(Qp) > 0 else None
                proxy = proxy if Q is not None else None
            paths = (
                f"the paths through the queries are modelled with spend_{proxy} (which follows them) as "
                "their noisy proxy"
                if proxy
                else "mediated effects are not separated from direct ones"
            )
            msg = (
                f"mediator column '{self.mediator}' {why}: the demand adjustment (signups given branded queries) "
                f"could not be made; {', '.join(demand) or 'no channel'} "
                f"{'gets' if len(demand) == 1 else 'get'} a confounding-bias prior and wide intervals, "
                f"and {paths}"
            )
            if self.strict_mediator:
                raise DataError(f"{panel.source}: {msg}")
            warnings.warn(msg, MediatorWarning, stacklevel=2)
            notes.append(msg)
            if proxy is None:
                mediated = []
        else:
            demand = []
        controls = [c for c in (self.controls or []) if c != self.mediator]
        panel.require_columns(controls)

        # Shape grid per channel and the saturated-adstock features of every candidate.
        spend = {ch: panel.wide(panel.spend_column(ch)).to_numpy().astype(float) for ch in channels}
        grid: dict[str, list[Shape]] = {}
        pair_log_prior = shape_log_prior(self.half_saturations, self.shapes, self.shape_prior)
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
        # The grid's log prior per candidate (decays and exponents kept are equally likely).
        cand_log_prior = np.tile(pair_log_prior, n_cand // pair_log_prior.size)
        if self.time_effects:
            proj = _TwoWay(cidx, C, T, G)
        else:
            block = fixed_block(panel, controls, cidx, C, fourier=self.fourier, holdout=0)
            proj = block.projector(np.ones(T * G, dtype=bool))
        # The demand proxy: the queries, their past and their future exponential smoothings. Branded
        # search's adstock is a smoothing of past queries; without these its lags would proxy the organic
        # demand that today's (noisy) query count misses; later queries measure today's demand free of
        # today's count noise (structural_inputs.demand_proxy).
        qcols = demand_proxy(Q / size) if Q is not None else []
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
        self.outcome_, self.period_ = panel.y, panel.period_name
        self.has_mediator_, self.mediator_proxy_ = Q is not None and proxy is None, proxy
        self.grid_ = grid
        self.capture_ = capture
        self._gram, self._unit, self._spend, self._y, self._Q = gram, unit, spend, y, Q
        self._T, self._G, self._C, self._K, self._n_cand, self._dof = T, G, C, K, n_cand, dof
        self._quarter = QUARTER_PERIODS[panel.period_name]
        self._layout()
        self._query_bound = self._query_bound_channels(lifts)
        # A media channel's shape prior; a query-bound capture channel's shapes weigh by the prior and
        # its lifts alone, and its spend is set by the queries, not a media plan's saturation: its
        # grid's points stay equally likely (as its coefficient prior stays on the coefficient).
        self._shape_log_prior = np.array(
            [np.zeros(n_cand) if k in self._query_bound else cand_log_prior for k in range(K)]
        )
        for k, share in self._query_bound.items():
            notes.append(
                f"{channels[k]}: the queries explain {share:.0%} of its spend's variation, so the panel "
                "measures its slope at current spend, not its curve: its shapes weigh by the prior and its "
                "lifts, and its clusters are pooled tightly (wide intervals without a lift)."
            )
        self._priors(y / size, Q / size if Q is not None else None)

        # Residual variance and autocorrelation at a first guess, then the mode, then again.
        mode = np.full(K, n_cand // 2)
        self._noise(mode, lifts=[])
        self._lift_rows, self._early_rows = [], []
        mode, cond = self._search(mode, lifts=[])
        self._noise(mode, lifts=[])
        # The panel's own (no-lift) preference among a demand-capture channel's shapes, divided out of
        # the shape weights below (``capture_shape_weights="prior"``): given the queries its spend moves
        # only by its own small noise, which measures its slope at current spend but not the curve's
        # shape down to zero (docs/calibration.md section 0).
        self._capture_cond = self._panel_shape_logml(mode)
        self.uncal_mean_ = self._posterior(mode, [])[0]
        kappa_hat = (
            self.uncal_mean_[self._ix["kappa"]].sum(axis=0) if Q is not None else np.zeros(C)
        )
        self._lift_ch = [lf.channel for lf in lifts]
        self._lift_rows = [self._lift_row(lf, kappa_hat) for lf in lifts]
        # What each readout's first periods say about its channel's carryover, given its total.
        self._early_rows = [
            self._early_row(lf, kappa_hat, row) if self.early_windows else None
            for lf, (row, _, _) in zip(lifts, self._lift_rows)
        ]
        use = list(range(len(lifts)))
        mode, cond = self._search(mode, lifts=use)
        self.mode_ = mode
        self._robust_scale(mode, use)
        # The other fixed block (cluster-by-period effects, or the smooth block when those were asked
        # for): a second defensible specification whose posterior mean at the mode's shapes the draws
        # are split over (structural_inference._specification_shift).
        if self.specification_average:
            alt = (
                fixed_block(panel, controls, cidx, C, fourier=self.fourier, holdout=0).projector(
                    np.ones(T * G, dtype=bool)
                )
                if self.time_effects
                else _TwoWay(cidx, C, T, G)
            )
            raw = base_cols + [
                _saturated(spend[ch] / size, grid[ch][mode[k]]) for k, ch in enumerate(channels)
            ]
            Xa = alt.resid(np.column_stack([v.ravel() for v in raw]))
            self._specification_shift(mode, use, Xa)
        else:
            self.spec_shift_ = np.zeros(self._p)
        self._sample(cond, use, rng)
        self.lifts_ = lifts
        self._summaries(lifts, notes)
        self._post_cache = {}  # only the fit's search and resampling reuse it
        return self

    def _check_params(self) -> None:
        if not 0 < self.confidence < 1:
            raise ConfigError(
                f"StructuralModel: confidence must be in (0, 1), got {self.confidence}"
            )
        if self.n_draws < 10:
            raise ConfigError(f"StructuralModel: n_draws must be at least 10, got {self.n_draws}")
        for name in (
            "prior_scale",
            "capture_prior_scale",
            "pooling",
            "capture_pooling",
            "demand_bias_scale",
        ):
            if not getattr(self, name) > 0:
                raise ConfigError(f"StructuralModel: {name} must be > 0, got {getattr(self, name)}")
        if self.prior_on not in PRIOR_ON:
            raise ConfigError(
                f"StructuralModel: prior_on must be one of {', '.join(PRIOR_ON)}, got {self.prior_on!r}"
            )
        if self.shape_prior not in SHAPE_PRIORS:
            raise ConfigError(
                f"StructuralModel: shape_prior must be one of {', '.join(SHAPE_PRIORS)}, "
                f"got {self.shape_prior!r}"
            )
        if self.capture_shape_weights not in ("prior", "likelihood"):
            raise ConfigError(
                "StructuralModel: capture_shape_weights must be 'prior' or 'likelihood', "
                f"got {self.capture_shape_weights!r}"
            )
        if not self.decays or any(not 0 <= d < 1 for d in self.decays):
            raise ConfigError(
                f"StructuralModel: decays must lie in [0, 1), got {list(self.decays)}"
            )
        if not 0 <= self.min_baseline < 1:
            raise ConfigError(
                f"StructuralModel: min_baseline must be in [0, 1), got {self.min_baseline}"
            )
