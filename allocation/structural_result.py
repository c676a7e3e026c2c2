"""Summaries and outputs of a fitted structural model: contributions, identification, curves, plots.

A mixin of :class:`allocation.structural.StructuralModel`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from allocation.calibration import draw_lift, finish_curve_axes
from allocation.calibration_lifts import Lift
from causal import response as R
from causal.base import check_is_fitted
from causal.errors import DataError

#: Share of a channel's draws at one end of the half-saturation grid from which it is flagged.
GRID_EDGE_SHARE = 0.5


def draw_multiples(
    candidates: Sequence, multiples: Sequence[float], picks: np.ndarray
) -> np.ndarray:
    """Each draw's half-saturation as a multiple of the channel's mean spend per unit size (the grid's
    first candidate has the first multiple: ``StructuralModel`` builds the grid in that order)."""
    ref = candidates[0].half_saturation / multiples[0]
    return np.array([candidates[j].half_saturation / ref for j in picks])


def grid_edges(
    grid: dict, multiples: Sequence[float], combos: np.ndarray, channels: Sequence[str]
) -> dict[str, dict | None]:
    """Per channel, the end of the half-saturation grid most of its draws take, or None.

    ``{"edge": "largest" | "smallest", "multiple": m, "share": s}`` when at least
    :data:`GRID_EDGE_SHARE` of the draws sit at the grid's largest half-saturation (the straightest
    curves the grid holds) or its smallest (the most bent). Issue 14's diagnosis (docs/backtest.md,
    session 10): on three simulated worlds of four programmatic took the largest in 73-95% of the draws
    while its true curve is bent, and that one channel's curve cost the daily loop 8-18 points of the
    oracle's gain; a posterior piled on the grid's edge says the panel pushed the shape as far as the
    grid goes, not that it measured it.
    """
    lo, hi = min(multiples), max(multiples)
    out: dict[str, dict | None] = {}
    if lo == hi:  # a one-point grid has no edge to pile on
        return dict.fromkeys(channels)
    for k, ch in enumerate(channels):
        m = draw_multiples(grid[ch], multiples, combos[:, k])
        out[ch] = None
        for edge, value in (("largest", hi), ("smallest", lo)):
            share = float(np.mean(np.isclose(m, value)))
            if share >= GRID_EDGE_SHARE:
                out[ch] = {"edge": edge, "multiple": float(value), "share": share}
    return out


class StructuralResults:
    """Contributions, identification and outputs of the posterior draws (mixin of ``StructuralModel``)."""

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
        edges = grid_edges(self.grid_, self.half_saturations, combos, self.channels_)
        # Identification: posterior sd of the pooled total coefficient against its prior sd.
        coef = self.total_coef(th)
        w = np.array([self.size_.to_numpy()[self.cluster_idx_ == c].sum() for c in range(self._C)])
        pooled = (coef * w).sum(axis=2) / w.sum()
        ident = {}
        for k, ch in enumerate(self.channels_):
            # sd of the (half-normal when effects are positive) prior of the pooled coefficient
            trunc = 1.0 if self.allow_negative else np.sqrt(1 - 2 / np.pi)
            # at the mode's shape: with prior_on="marginal_return" the coefficient's prior scales with it
            slope = float(self._slope[k, self.mode_[k]])
            prior_sd = (
                trunc * self._tau_k[k] * np.sqrt(1 + self._pooling_k(k) ** 2 / self._C) / slope
            )
            if k in self._med_k:
                kap = float(th[:, self._ix["kappa"]].sum(axis=1).mean())
                prior_sd = float(np.hypot(prior_sd, trunc * kap * self._tau["beta_q"] / slope))
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
                "half_saturation_at_grid_edge": edges[ch],
            }
        self.identification_ = ident
        for ch, edge in edges.items():
            if edge is not None:
                notes.append(
                    f"{ch}: {edge['share']:.0%} of the draws take the grid's {edge['edge']} "
                    f"half-saturation ({edge['multiple']:g}x its mean spend): its curvature rests on "
                    "the grid's edge, which also cuts the interval of its marginal return; a test near "
                    "current spend (a heavy-up or a half cut) measures that return."
                )
        sy, ry, vy = self.noise_["y"]
        notes.append(
            f"Signups equation: residual autocorrelation {ry:.2f}, likelihood tempered by {vy:.2f} "
            "(group-clustered sandwich over market cluster x 8-week blocks)."
        )
        if "q" in self.noise_:
            notes.append(
                f"Queries equation: residual autocorrelation {self.noise_['q'][1]:.2f}, tempered by "
                f"{self.noise_['q'][2]:.2f}."
            )
        notes.append(
            f"Shapes averaged over a {self._n_cand}-point grid per channel by marginal likelihood"
            + (" and Meridian's default Hill prior " if self.shape_prior == "meridian" else " ")
            + f"(importance-resampling effective size {self.shape_ess_:.0f} of {4 * self.n_draws} proposals)."
        )
        if self._C > 1 or self._G > 1:
            notes.append(
                "Per-market lines share their cluster's coefficient per unit of market size (pooled within "
                "the cluster), scaled by each market's size; clusters are partially pooled toward the channel."
            )
        self.notes_ = notes

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

    def plot(self, channel: str, *, ax=None):
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
        for i, lf in enumerate(lf for lf in getattr(self, "lifts_", []) if lf.channel == channel):
            self._draw_lift(ax, lf, xs, med, first=i == 0)
        title = f"{channel}: total response (direct + through branded queries)"
        return finish_curve_axes(fig, ax, channel, self.period_, self.outcome_, title)

    def _draw_lift(self, ax, lf: Lift, xs: np.ndarray, med: np.ndarray, *, first: bool) -> None:
        """A lift at its spend, on the all-markets scale of the curve.

        The test's treated markets, per period of the test, scaled up by total size over their size
        (the curve spreads spend over markets by size): an open circle on the curve at the spend the
        test replaced (the counterfactual), a filled one at the test's spend with the measured
        incremental and its interval.
        """
        index = {g: i for i, g in enumerate(self.geos_)}
        cols = [index[g] for g in lf.treated if g in index]
        window = (self.dates_ >= pd.Timestamp(lf.start)) & (self.dates_ <= pd.Timestamp(lf.end))
        periods = int(window.sum())
        size = self.size_.to_numpy()
        if not cols or periods == 0 or size[cols].sum() <= 0:
            return
        scale = size.sum() / size[cols].sum() / periods
        observed = float(self._spend[lf.channel][np.ix_(window, cols)].sum())
        x_cf = (observed - lf.spend_delta) * scale
        x_pt = observed * scale
        y_cf = float(np.interp(x_cf, xs, med))
        y_pt = y_cf + lf.incremental * scale
        lo, hi = sorted(y_cf + v * scale for v in lf.incremental_ci)
        label = f"lift {lf.name or lf.source}: measured, {lf.confidence:.0%} interval"
        draw_lift(ax, (x_cf, y_cf), (x_pt, y_pt), (lo, hi), label, first=first)

    def to_dict(self) -> dict:
        return self.to_curves()

    def to_curves(self) -> dict:
        """The curves.json dict: per (channel, market) lines with draws, cluster aggregates, identification."""
        check_is_fitted(self, "draws_")
        from allocation.structural_curves import curves_dict

        return curves_dict(self)
