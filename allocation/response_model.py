r"""Response curves fitted on a geo panel: adstock, saturation, partial pooling by market cluster.

The model, for geo :math:`g` in market cluster :math:`c(g)` and period :math:`t`,
is written per unit of market size :math:`s_g` (a geo's mean outcome over the
mean of all geos, so large and small markets share one curve):

.. math::

    \frac{y_{gt}}{s_g} = \alpha_g + \sum_k z_{gt}^\top \gamma_{c(g)}
        + \sum_{ch} \beta^{ch}_{c(g)}\, f_{ch}\!\left(\mathrm{adstock}_{ch}(x^{ch}_{g\cdot}/s_g)_t\right)
        + \varepsilon_{gt}

with geo fixed effects :math:`\alpha_g`, per-cluster time structure
:math:`z` (trend, yearly Fourier terms, day of week, and the controls the
causal graph calls for, linear and squared), a normalised adstock (geometric,
or Weibull-PDF lag weights as in Robyn) and a saturation :math:`f` (Hill,
exponential or logarithmic). Adstock and saturation parameters are global per
channel, chosen by coordinate descent over a grid on the least-squares fit
(Jin et al. 2017); the coefficients :math:`\beta^{ch}_c = \beta^{ch} + u^{ch}_c`
are partially pooled: :math:`u^{ch}_c \sim N(0, (\rho\,|\beta^{ch}|)^2)`, so a
small market borrows strength from the global curve (Gelman & Hill 2007, ch. 12).
The fixed block (geo effects and time structure) is profiled out by
Frisch-Waugh-Lovell, which keeps every grid step a small regression.

The residual variance is inflated by the residuals' lag-one autocorrelation
(:math:`(1+\hat\rho)/(1-\hat\rho)`, the AR(1) variance inflation of a mean),
because daily market deviations persist and a naive variance would overstate
what the panel knows.

References
----------
Jin, Y., Wang, Y., Sun, Y., Chan, D., & Koehler, J. (2017). Bayesian methods for
media mix modeling with carryover and shape effects. Google Inc.
Gelman, A., & Hill, J. (2007). Data Analysis Using Regression and
Multilevel/Hierarchical Models. Cambridge University Press.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from allocation.fixed_effects import FixedBlock, fixed_block
from causal import response as R
from causal.base import BaseEstimator, check_is_fitted
from causal.errors import ConfigError, DataError
from causal.panel import Panel
from causal.response import geometric_adstock, weibull_adstock_weights, weighted_adstock
from causal.summary import Summary, fmt_frame, fmt_number

FORMS = ("hill", "exp", "log")
GEOMETRIC_DECAYS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
# Weibull (shape, scale) candidates and the longest lag they spread over.
WEIBULL_GRID = ((0.5, 1.0), (1.0, 1.0), (1.0, 3.0), (2.0, 3.0), (2.0, 7.0), (3.0, 10.0))
WEIBULL_MAX_LAG = 21
QUARTER_PERIODS = {"day": 91, "week": 13, "month": 3, "year": 1}


def infer_clusters(
    geos: Sequence[str], mapping: Mapping[str, str] | None = None
) -> dict[str, str] | None:
    """Market cluster of each geo from a user's ``mapping``; None (one market) without one.

    Raises
    ------
    DataError
        If ``mapping`` leaves a geo of the panel without a cluster.
    """
    if mapping is None:
        return None
    out = {}
    for g in geos:
        if g not in mapping:
            raise DataError(f"geo '{g}' has no market cluster in the cluster mapping")
        out[g] = str(mapping[g])
    return out


@dataclass(frozen=True)
class ChannelCurve:
    """One channel's adstock and saturation, per unit of market size.

    ``adstock`` is ``{"form": "geometric", "decay": l}`` or
    ``{"form": "weibull", "shape": k, "scale": l, "max_lag": L}``; ``form`` is
    ``hill`` (``half_saturation``, ``shape``), ``exp`` or ``log`` (``scale``).
    """

    name: str
    adstock: dict
    form: str
    params: dict

    def carry(self, x: np.ndarray) -> np.ndarray:
        """Normalised adstock along axis 0 (periods)."""
        if self.adstock["form"] == "geometric":
            return geometric_adstock(x, self.adstock["decay"])
        w = weibull_adstock_weights(
            self.adstock["shape"], self.adstock["scale"], self.adstock["max_lag"]
        )
        return weighted_adstock(x, w)

    def saturate(self, a: np.ndarray) -> np.ndarray:
        """Saturation in [0, 1) for hill and exp, unbounded log for log (the curve core with unit beta)."""
        return R.value(self.form, a, {"beta": 1.0, **self.params})

    def derivative(self, a: np.ndarray) -> np.ndarray:
        """d saturate / d a (for marginal returns)."""
        return R.derivative(
            self.form, np.maximum(np.asarray(a, float), 1e-12), {"beta": 1.0, **self.params}
        )

    def response_block(self, beta: float, size: float) -> dict:
        """curves.json ``response`` of a market of total size ``size`` (steady spend per period)."""
        if self.form == "hill":
            return {
                "form": "hill",
                "beta": beta * size,
                "half_saturation": self.params["half_saturation"] * size,
                "shape": self.params["shape"],
            }
        return {"form": self.form, "beta": beta * size, "scale": self.params["scale"] * size}

    def adstock_block(self) -> dict:
        return dict(self.adstock)


@dataclass
class HoldoutBacktest:
    """Time-based holdout: fit before ``start``, predict the last periods."""

    start: str
    end: str
    n_periods: int
    wape_total: float
    wape_geo: float
    mape_total: float
    r2_total: float
    bias_total: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class _Design:
    """Arrays the fit and the calibration share (rows are date-major: t * G + g)."""

    y: np.ndarray  # (T, G) outcome
    size: np.ndarray  # (G,) market size
    spend: dict[str, np.ndarray]  # channel -> (T, G)
    Z: FixedBlock  # geo effects + per-cluster time structure
    cluster_idx: np.ndarray  # (G,) cluster position
    clusters: list[str]
    extra: dict = field(default_factory=dict)


class ResponseModel(BaseEstimator):
    """Per-channel adstock + saturation curves on a geo panel, pooled across market clusters.

    Parameters
    ----------
    channels : sequence of str or None, default=None
        Channels to model; all ``spend_*`` columns by default.
    controls : sequence of str or None, default=None
        Covariate columns entering the time structure (the causal graph's
        adjustment variables that are not descendants of any channel).
    clusters : mapping geo -> cluster, or None, default=None
        Market clusters (a user's mapping); one market when None.
    forms : sequence of str, default=("hill", "exp", "log")
        Saturation forms searched per channel.
    adstock : {"geometric", "weibull"}, default="geometric"
    pooling : float, default=0.5
        Prior sd of a cluster's coefficient deviation, relative to the global
        coefficient. Smaller pools harder; ``float("inf")`` fits clusters apart.
    fourier : int, default=2
        Yearly Fourier harmonics per cluster (none when less than nine months
        of data precede the holdout).
    holdout : int or None, default=None
        Periods held out at the end for the backtest: one quarter of the
        panel's frequency when None (91 days, 13 weeks, 3 months); 0 skips it.
    n_sweeps : int, default=2
        Coordinate-descent sweeps over the channels' grids.

    Attributes
    ----------
    channels_ : list of str
    curves_ : dict channel -> ChannelCurve
    clusters_ : list of str
        Market names (``[None]`` for one market).
    geo_cluster_ : dict geo -> cluster or None
    size_ : Series (geos,)
        Market size per geo.
    coef_ : DataFrame (channels x clusters)
        Coefficient per unit size, :math:`\\beta^{ch}_c`.
    coef_global_ : Series (channels,)
    theta_ : ndarray (p,)
        Media coefficients: per channel the global one then the cluster deviations.
    cov_ : ndarray (p, p)
        Their covariance (autocorrelation-inflated residual variance).
    sigma2_, rho_ : float
        Residual variance per unit size and residual lag-one autocorrelation.
    contribution_ : Series (channels,)
        Outcome attributed to each channel over the panel.
    backtest_ : HoldoutBacktest or None
    r2_ : float
        In-sample R^2 of the outcome per unit size.
    spend_ : dict channel -> ndarray (periods, geos)
        The observed spend the curves were fitted on.
    cluster_index_ : ndarray (geos,)
        Position in ``clusters_`` of each geo's cluster.
    n_coef_per_channel_ : int
        Coefficients per channel in ``theta_``: 1 for one market, else the global one plus
        one deviation per cluster (:meth:`column_index`).
    """

    def __init__(
        self,
        *,
        channels: Sequence[str] | None = None,
        controls: Sequence[str] | None = None,
        clusters: Mapping[str, str] | None = None,
        forms: Sequence[str] = FORMS,
        adstock: str = "geometric",
        pooling: float = 0.5,
        fourier: int = 2,
        holdout: int | None = None,
        n_sweeps: int = 2,
    ) -> None:
        self.channels = channels
        self.controls = controls
        self.clusters = clusters
        self.forms = forms
        self.adstock = adstock
        self.pooling = pooling
        self.fourier = fourier
        self.holdout = holdout
        self.n_sweeps = n_sweeps

    # -- public ----------------------------------------------------------------
    def fit(self, panel: Panel) -> ResponseModel:
        """Fit curves on the panel; returns ``self``."""
        self._check_params()
        channels = list(self.channels) if self.channels is not None else panel.channels
        if not channels:
            raise DataError(f"{panel.source}: no spend_<channel> column to fit curves on")
        for ch in channels:
            panel.spend_column(ch)
        controls = list(self.controls or [])
        panel.require_columns(controls)
        T, G = len(panel.dates), len(panel.geos)
        if T < 30:
            raise DataError(f"{panel.source}: {T} periods; response curves need at least 30")
        y = panel.wide().to_numpy()
        geo_mean = y.mean(axis=0)
        if (geo_mean <= 0).any():
            g = panel.geos[int(np.flatnonzero(geo_mean <= 0)[0])]
            raise DataError(
                f"{panel.source}: geo '{g}' has no positive '{panel.y}'; its market size cannot be measured"
            )
        size = geo_mean / geo_mean.mean()
        geo_cluster = infer_clusters(panel.geos, self.clusters)
        if geo_cluster is None:
            clusters: list = [None]
            cidx = np.zeros(G, dtype=int)
        else:
            clusters = sorted(set(geo_cluster.values()))
            cidx = np.array([clusters.index(geo_cluster[g]) for g in panel.geos])
        spend = {ch: panel.wide(panel.spend_column(ch)).to_numpy() for ch in channels}
        self._quarter = QUARTER_PERIODS[panel.period_name]
        self.holdout_ = self._quarter if self.holdout is None else int(self.holdout)
        Z = self._fixed_block(panel, controls, cidx, len(clusters))
        d = _Design(y=y, size=size, spend=spend, Z=Z, cluster_idx=cidx, clusters=clusters)
        self.channels_, self.clusters_, self.controls_ = channels, clusters, controls
        self.geo_cluster_ = geo_cluster or {g: None for g in panel.geos}
        self.size_ = pd.Series(size, index=panel.geos, name="size")
        self.dates_, self.geos_ = panel.dates, list(panel.geos)
        self.period_ = panel.period_name
        self.outcome_ = panel.y
        self.spend_ = spend
        self.cluster_index_ = cidx
        self.n_coef_per_channel_ = 1 if len(clusters) == 1 else 1 + len(clusters)
        self._d = d

        rows = np.ones(T * G, dtype=bool)
        self.curves_ = self._search(d, rows)
        self._fit_linear(d, rows, store=True)
        hold = self.holdout_
        self.backtest_ = self._backtest(d) if hold and T - hold >= max(30, 2 * hold // 3) else None
        return self

    def features(self, channel: str, spend: np.ndarray | None = None) -> np.ndarray:
        """Saturated adstock per unit size, (T, G), of a channel's spend (observed by default)."""
        check_is_fitted(self, "theta_")
        x = self.spend_[channel] if spend is None else spend
        c = self.curves_[channel]
        return c.saturate(c.carry(x / self._d.size))

    def column_index(self, channel: str) -> slice:
        """Positions of a channel's coefficients in ``theta_`` (global, then one per cluster)."""
        k = self.channels_.index(channel)
        w = self.n_coef_per_channel_
        return slice(k * w, (k + 1) * w)

    def loadings(
        self, channel: str, values: np.ndarray, geo_mask: np.ndarray | None = None
    ) -> np.ndarray:
        """Row over ``theta_`` mapping coefficients to ``sum_g s_g * beta_c(g) * sum_t values[t, g]``."""
        s = self._d.size
        tot = (values.sum(axis=0) * s) if values.ndim == 2 else values * s
        if geo_mask is not None:
            tot = np.where(geo_mask, tot, 0.0)
        row = np.zeros(len(self.theta_))
        sl = self.column_index(channel)
        row[sl.start] = tot.sum()
        if self.n_coef_per_channel_ > 1:
            for c in range(len(self.clusters_)):
                row[sl.start + 1 + c] = tot[self.cluster_index_ == c].sum()
        return row

    def contribution_matrix(self) -> tuple[np.ndarray, list[tuple[str, object]]]:
        """Matrix M with ``M @ theta`` = contribution per (channel, cluster), and the row labels."""
        check_is_fitted(self, "theta_")
        rows, labels = [], []
        for ch in self.channels_:
            f = self._feat[ch]
            for c, name in enumerate(self.clusters_):
                rows.append(self.loadings(ch, f, self.cluster_index_ == c))
                labels.append((ch, name))
        return np.array(rows), labels

    def cluster_coef(self, theta: np.ndarray) -> pd.DataFrame:
        """Coefficient per unit size per (channel, cluster) from a coefficient vector."""
        out = {}
        for ch in self.channels_:
            sl = self.column_index(ch)
            t = theta[sl]
            out[ch] = [
                t[0] + (t[1 + c] if self.n_coef_per_channel_ > 1 else 0.0)
                for c in range(len(self.clusters_))
            ]
        return pd.DataFrame(out, index=pd.Index(self.clusters_, name="cluster")).T

    def cluster_size(self) -> dict:
        return {
            name: float(self._d.size[self.cluster_index_ == c].sum())
            for c, name in enumerate(self.clusters_)
        }

    def current_spend(self, channel: str, periods: int | None = None) -> dict:
        """Mean spend per period of each cluster over the last ``periods`` periods (one quarter by default)."""
        x = self.spend_[channel][-(periods or self._quarter) :]
        return {
            name: float(x[:, self.cluster_index_ == c].sum(axis=1).mean())
            for c, name in enumerate(self.clusters_)
        }

    def total_spend(self, channel: str) -> dict:
        x = self.spend_[channel]
        return {
            name: float(x[:, self.cluster_index_ == c].sum())
            for c, name in enumerate(self.clusters_)
        }

    def to_frame(self) -> pd.DataFrame:
        """Per channel: curve, coefficient, contribution, spend and ROAS."""
        check_is_fitted(self, "theta_")
        rows = []
        for ch in self.channels_:
            c = self.curves_[ch]
            spend = sum(self.total_spend(ch).values())
            rows.append(
                {
                    "channel": ch,
                    "form": c.form,
                    **{f"sat_{k}": v for k, v in c.params.items()},
                    **{f"adstock_{k}": v for k, v in c.adstock.items() if k != "form"},
                    "coef_global": float(self.coef_global_[ch]),
                    "contribution": float(self.contribution_[ch]),
                    "spend": spend,
                    "roas": float(self.contribution_[ch]) / spend if spend else np.nan,
                }
            )
        return pd.DataFrame(rows).set_index("channel")

    def summary(self) -> Summary:
        """The fit in a few lines (panel, fit quality, holdout backtest) over the per-channel table."""
        check_is_fitted(self, "theta_")
        head = [
            f"Response curves: {len(self.geos_)} geos x {len(self.dates_)} {self.period_}s, "
            f"{len(self.channels_)} channels, {len(self.clusters_)} market cluster(s)",
            f"R^2 per unit size {fmt_number(self.r2_)}, residual autocorrelation "
            f"{fmt_number(self.rho_)} (variance inflated by {fmt_number((1 + self.rho_) / (1 - self.rho_))})",
        ]
        if self.backtest_ is not None:
            b = self.backtest_
            head.append(
                f"holdout {b.start}..{b.end}: WAPE total {fmt_number(b.wape_total)}, "
                f"per geo {fmt_number(b.wape_geo)}, bias {fmt_number(b.bias_total)}"
            )
        df = self.to_frame()
        return Summary("\n".join(head) + "\n" + fmt_frame(df), {"channels": df})

    # -- internals -------------------------------------------------------------
    def _check_params(self) -> None:
        if self.adstock not in ("geometric", "weibull"):
            raise ConfigError(
                f"ResponseModel: adstock must be 'geometric' or 'weibull', got {self.adstock!r}"
            )
        bad = [f for f in self.forms if f not in FORMS]
        if bad or not self.forms:
            raise ConfigError(
                f"ResponseModel: forms must be among {', '.join(FORMS)}, got {list(self.forms)!r}"
            )
        if not self.pooling > 0:
            raise ConfigError(f"ResponseModel: pooling must be > 0, got {self.pooling}")
        if self.holdout is not None and self.holdout < 0:
            raise ConfigError(f"ResponseModel: holdout must be >= 0, got {self.holdout}")

    def _fixed_block(
        self, panel: Panel, controls: list[str], cidx: np.ndarray, n_cl: int
    ) -> FixedBlock:
        return fixed_block(panel, controls, cidx, n_cl, fourier=self.fourier, holdout=self.holdout_)

    def _candidates(self, ref: float) -> tuple[list[dict], list[tuple[str, dict]]]:
        if self.adstock == "geometric":
            ads = [{"form": "geometric", "decay": d} for d in GEOMETRIC_DECAYS]
        else:
            ads = [
                {"form": "weibull", "shape": k, "scale": scale, "max_lag": WEIBULL_MAX_LAG}
                for k, scale in WEIBULL_GRID
            ]
        sats: list[tuple[str, dict]] = []
        for form in self.forms:
            if form == "hill":
                sats += [
                    ("hill", {"half_saturation": ref * m, "shape": s})
                    for s in (1.0, 2.0)
                    for m in (0.5, 1.0, 2.0, 4.0)
                ]
            elif form == "exp":
                sats += [("exp", {"scale": ref * m}) for m in (0.5, 1.0, 2.0, 4.0)]
            else:
                sats += [("log", {"scale": ref * m}) for m in (0.25, 1.0, 4.0)]
        return ads, sats

    def _search(self, d: _Design, rows: np.ndarray) -> dict[str, ChannelCurve]:
        """Coordinate descent over each channel's adstock, then saturation, on the fit's SSE."""
        proj = d.Z.projector(rows)
        yv = (d.y / d.size).ravel()[rows]
        yr = proj.resid(yv)

        def resid_feature(curve: ChannelCurve, x: np.ndarray) -> np.ndarray:
            return proj.resid(curve.saturate(curve.carry(x / d.size)).ravel()[rows])

        curves: dict[str, ChannelCurve] = {}
        grids: dict[str, tuple] = {}
        for ch, x in d.spend.items():
            pos = x[x > 0] / np.broadcast_to(d.size, x.shape)[x > 0]
            ref = float(pos.mean()) if pos.size else 1.0
            ads, sats = self._candidates(ref)
            grids[ch] = (ads, sats)
            form, params = next(((f, p) for f, p in sats if f == self.forms[0]), sats[0])
            curves[ch] = ChannelCurve(ch, ads[len(ads) // 3], form, params)
        feats = {ch: resid_feature(curves[ch], d.spend[ch]) for ch in d.spend}

        def sse(cols: list[np.ndarray]) -> float:
            F = np.column_stack(cols)
            coef, *_ = np.linalg.lstsq(F, yr, rcond=None)
            r = yr - F @ coef
            return float(r @ r)

        for _ in range(self.n_sweeps):
            for ch in d.spend:
                others = [feats[o] for o in d.spend if o != ch]
                ads, sats = grids[ch]
                for stage in ("adstock", "saturation"):
                    best, best_curve, best_f = np.inf, curves[ch], feats[ch]
                    options = (
                        [ChannelCurve(ch, a, curves[ch].form, curves[ch].params) for a in ads]
                        if stage == "adstock"
                        else [ChannelCurve(ch, curves[ch].adstock, f, p) for f, p in sats]
                    )
                    for cand in options:
                        f = resid_feature(cand, d.spend[ch])
                        val = sse([*others, f])
                        if not np.isfinite(best) or val < best - 1e-9 * abs(best):
                            best, best_curve, best_f = val, cand, f
                    curves[ch], feats[ch] = best_curve, best_f
        return curves

    def _media_block(self, d: _Design, feat: dict[str, np.ndarray], rows: np.ndarray) -> np.ndarray:
        cl = np.tile(d.cluster_idx, d.y.shape[0])[rows]
        cols = []
        for ch in self.channels_:
            f = feat[ch].ravel()[rows]
            cols.append(f)
            if self.n_coef_per_channel_ > 1:
                cols += [np.where(cl == c, f, 0.0) for c in range(len(self.clusters_))]
        return np.column_stack(cols)

    def _fit_linear(self, d: _Design, rows: np.ndarray, *, store: bool) -> dict:
        """Pooled ridge fit of the media coefficients with the fixed block profiled out."""
        feat = {
            ch: self.curves_[ch].saturate(self.curves_[ch].carry(d.spend[ch] / d.size))
            for ch in self.channels_
        }
        proj = d.Z.projector(rows)
        yv = (d.y / d.size).ravel()[rows]
        F = self._media_block(d, feat, rows)
        Fr = proj.resid(F)
        yr = proj.resid(yv)
        w, k = self.n_coef_per_channel_, len(self.channels_)
        glob = [i * w for i in range(k)]
        # Global-only fit sets the pooling scale and the residual variance.
        bg, *_ = np.linalg.lstsq(Fr[:, glob], yr, rcond=None)
        r0 = yr - Fr[:, glob] @ bg
        sigma2 = float(r0 @ r0) / max(len(yr) - proj.dof - k, 1)
        penalty = np.zeros(w * k)
        if w > 1:
            for i in range(k):
                tau = self.pooling * abs(bg[i]) + 1e-9
                penalty[i * w + 1 : (i + 1) * w] = sigma2 / tau**2
        FtF = Fr.T @ Fr
        Fty = Fr.T @ yr
        A = FtF + np.diag(penalty)
        theta = np.linalg.solve(A, Fty)
        resid = yr - Fr @ theta
        sigma2 = float(resid @ resid) / max(len(yr) - proj.dof - k, 1)
        G = d.y.shape[1]
        R = resid.reshape(-1, G) if rows.all() else None
        rho = 0.0
        if R is not None and R.shape[0] > 2:
            num = (R[1:] * R[:-1]).sum()
            rho = float(np.clip(num / (R * R).sum(), 0.0, 0.95))
        vif = (1 + rho) / (1 - rho)
        out = {
            "theta": theta,
            "FtF": FtF,
            "Fty": Fty,
            "penalty": penalty,
            "sigma2": sigma2,
            "rho": rho,
            "vif": vif,
            "feat": feat,
            "proj": proj,
            "F": F,
            "yv": yv,
        }
        if store:
            self.theta_ = theta
            self.sigma2_, self.rho_ = sigma2, rho
            self.penalty_ = penalty
            self.FtF_, self.Fty_ = FtF, Fty
            self.cov_ = sigma2 * vif * np.linalg.inv(A)
            self._feat = feat
            tss = float(((yv - yv.mean()) ** 2).sum())
            self.r2_ = 1.0 - float(resid @ resid) / tss if tss > 0 else np.nan
            self.coef_ = self.cluster_coef(theta)
            self.coef_global_ = pd.Series(theta[glob], index=self.channels_)
            M, labels = self.contribution_matrix()
            per = M @ theta
            self.contribution_ = pd.Series(
                {
                    ch: float(sum(v for (c, _), v in zip(labels, per) if c == ch))
                    for ch in self.channels_
                }
            )
        return out

    def _backtest(self, d: _Design) -> HoldoutBacktest:
        """Refit with the chosen curves on all but the last ``holdout`` periods and forecast them."""
        T, G = d.y.shape
        t0 = T - self.holdout_
        rows = np.repeat(np.arange(T) < t0, G)
        fit = self._fit_linear(d, rows, store=False)
        # Coefficients of the fixed block, given the media coefficients, on the training rows.
        resid_y = fit["yv"] - fit["F"] @ fit["theta"]
        test = ~rows
        F_test = self._media_block(d, fit["feat"], test)
        base = fit["proj"].forecast(resid_y, np.arange(t0, T))
        pred = (base.ravel() + F_test @ fit["theta"]).reshape(-1, G) * d.size
        obs = d.y[t0:]
        tot_p, tot_o = pred.sum(axis=1), obs.sum(axis=1)
        return HoldoutBacktest(
            start=self.dates_[t0].date().isoformat(),
            end=self.dates_[-1].date().isoformat(),
            n_periods=int(self.holdout_),
            wape_total=float(np.abs(tot_p - tot_o).sum() / np.abs(tot_o).sum()),
            wape_geo=float(np.abs(pred - obs).sum() / np.abs(obs).sum()),
            mape_total=float(np.mean(np.abs(tot_p - tot_o) / np.maximum(np.abs(tot_o), 1e-9))),
            r2_total=float(1 - ((tot_p - tot_o) ** 2).sum() / ((tot_o - tot_o.mean()) ** 2).sum()),
            bias_total=float((tot_p.sum() - tot_o.sum()) / tot_o.sum()),
        )
