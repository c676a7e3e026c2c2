r"""Calibrate response curves on experiment lifts.

Each lift (a readout: incremental outcome :math:`L_j` with an interval, for a
spend change of one channel in given geos and dates) enters the fit as a
Gaussian likelihood term on the curve's *predicted incremental for exactly that
intervention*:

.. math::

    L_j \sim N\!\left(\sum_{g \in G_j} s_g\, \beta_{c(g)} \sum_{t \in W_j}
        \big[f(A^{obs}_{gt}) - f(A^{cf}_{gt})\big],\; \sigma_j^2\right),

where :math:`A^{obs}` is the adstock of the observed spend and :math:`A^{cf}`
that of the counterfactual spend (observed minus the readout's
``spend_delta``, spread over the treated geos and days), both computed over the
whole series so carryover into the window (and the ramp inside it) is
included. :math:`\sigma_j` comes from ``incremental_ci`` at its ``confidence``.

Observational data identify a channel's coefficient only up to confounding
(branded search's spend follows organic demand). The observational likelihood
therefore sees :math:`\beta_c + b_c`, with a *confounding bias*
:math:`b_c \sim N(0, \tau^2)` for each channel that has a lift, while the lifts
see :math:`\beta_c` alone: the experiment-informed prior idea of Chen et al.
(2018) and Zhang et al. (2024), written as one linear-Gaussian model so the
posterior is exact. :math:`\tau` is ``bias_scale`` times the larger of the
observational and the lift-implied coefficient, so neither source is ruled
out a priori; channels without a lift keep :math:`b=0` (the panel is all that
is known about them). Several lifts of a channel simply add likelihood terms;
each lift is also predicted from the fit *without* it, and a lift whose
leave-one-out z-score exceeds the two-sided ``conflict_level`` quantile while
another lift of the channel is present is reported as conflicting.

Intervals on coefficients, contributions, ROAS and marginal ROAS come from
draws of the Gaussian posterior of the coefficients, given the adstock and
saturation shapes chosen by the fit (their uncertainty is not propagated).

References
----------
Chen, A., Chan, D., Perry, M., Jin, Y., Sun, Y., Wang, Y., & Koehler, J. (2018).
Bias correction for paid search in media mix modeling. Google Inc.
Zhang, Y., et al. (2024). Media mix model calibration with Bayesian priors. Google Inc.
Vaver, J., & Koehler, J. (2011). Measuring ad effectiveness using geo experiments. Google Inc.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

# Re-exported: lifts moved to allocation.calibration_lifts (import paths keep working).
from allocation.calibration_lifts import (  # noqa: F401
    Lift,
    _LiftDesign,
    counterfactual_spend,
    lift_design,
    load_lift,
    validate_lift,
)
from allocation.response_model import ResponseModel
from causal.base import check_is_fitted


@dataclass
class CalibrationResult:
    """Curves before and after calibration, with intervals.

    Attributes
    ----------
    model : ResponseModel
    theta_before, theta_after : ndarray
        Causal coefficients before (observational) and after calibration.
    cov_before, cov_after : ndarray
    channels : DataFrame
        Per channel: contribution, ROAS, marginal ROAS before/after with intervals.
    lines : DataFrame
        The same per (channel, market).
    lifts : DataFrame
        Per lift: measured, predicted before/after, leave-one-out z, conflict flag.
    conflicts : list of str
        One sentence per conflicting lift.
    confidence : float
    """

    model: ResponseModel
    theta_before: np.ndarray
    theta_after: np.ndarray
    cov_before: np.ndarray
    cov_after: np.ndarray
    channels: pd.DataFrame
    lines: pd.DataFrame
    lifts: pd.DataFrame
    conflicts: list[str]
    confidence: float
    designs: list = field(default_factory=list, repr=False)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A short text: contributions before/after, lifts and conflicts."""
        lines = [
            f"Calibrated response curves ({len(self.designs)} lifts, intervals at {self.confidence:.0%})"
        ]
        for ch, r in self.channels.iterrows():
            lines.append(
                f"  {ch:<16} contribution {r['contribution_before']:>12,.0f} -> {r['contribution_after']:>12,.0f} "
                f"[{r['contribution_after_lo']:,.0f}, {r['contribution_after_hi']:,.0f}]  "
                f"ROAS {r['roas_after']:.4g}  marginal {r['mroas_after']:.4g}"
            )
        for _, r in self.lifts.iterrows():
            lines.append(
                f"  lift {r['name']}: measured {r['measured']:,.0f}, curve before {r['predicted_before']:,.0f}, "
                f"after {r['predicted_after']:,.0f}" + ("  CONFLICT" if r["conflict"] else "")
            )
        lines += [f"  conflict: {c}" for c in self.conflicts]
        return "\n".join(lines)

    def curve_lines(self) -> list[dict]:
        """The ``channels`` list of curves.json."""
        m = self.model
        after, before = m.cluster_coef(self.theta_after), m.cluster_coef(self.theta_before)
        sizes = m.cluster_size()
        out = []
        for ch in m.channels_:
            curve = m.curves_[ch]
            current = m.current_spend(ch)
            for name in m.clusters_:
                r = self.lines.loc[(ch, str(name))]
                out.append(
                    {
                        "name": ch,
                        "market": name,
                        "response": curve.response_block(float(after.loc[ch, name]), sizes[name]),
                        "adstock": curve.adstock_block(),
                        "current_spend": current[name],
                        "min_spend": 0.0,
                        "max_spend": None,
                        "contribution": {
                            "uncalibrated": float(r["contribution_before"]),
                            "calibrated": float(r["contribution_after"]),
                        },
                        "response_uncalibrated": curve.response_block(
                            float(before.loc[ch, name]), sizes[name]
                        ),
                        "calibrated": bool(r["calibrated"]),
                        "intervals": {
                            "confidence": self.confidence,
                            "beta": [
                                r["beta_after_lo"] * sizes[name],
                                r["beta_after_hi"] * sizes[name],
                            ],
                            "contribution": [
                                float(r["contribution_after_lo"]),
                                float(r["contribution_after_hi"]),
                            ],
                            "roas": [float(r["roas_after_lo"]), float(r["roas_after_hi"])],
                            "marginal_roas": [
                                float(r["mroas_after_lo"]),
                                float(r["mroas_after_hi"]),
                            ],
                        },
                        "roas": {
                            "uncalibrated": float(r["roas_before"]),
                            "calibrated": float(r["roas_after"]),
                        },
                        "marginal_roas": {
                            "uncalibrated": float(r["mroas_before"]),
                            "calibrated": float(r["mroas_after"]),
                        },
                        "total_spend": float(r["spend"]),
                    }
                )
        return out

    def to_dict(self) -> dict:
        """curves.json."""
        m = self.model
        bt = m.backtest_.to_dict() if m.backtest_ is not None else None
        return {
            "outcome": m.outcome_,
            "period": m.period_,
            "channels": self.curve_lines(),
            "totals": {
                ch: {
                    k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                    for k, v in row.items()
                }
                for ch, row in self.channels.to_dict(orient="index").items()
            },
            "lifts": json.loads(self.lifts.to_json(orient="records")),
            "conflicts": self.conflicts,
            "backtest": bt,
            "fit": {
                "r2": m.r2_,
                "residual_autocorrelation": m.rho_,
                "controls": m.controls_,
                "clusters": [c for c in m.clusters_ if c is not None],
                "pooling": m.pooling,
                "adstock": m.adstock,
                "dates": [m.dates_[0].date().isoformat(), m.dates_[-1].date().isoformat()],
            },
            "confidence": self.confidence,
            "notes": self.notes,
        }

    def plot(self, channel: str, *, ax=None):
        """Response curve of a channel (all markets summed) before and after, with its lifts."""
        import matplotlib.pyplot as plt

        fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 4))
        m = self.model
        curve, sizes = m.curves_[channel], m.cluster_size()
        cur = sum(m.current_spend(channel).values())
        xs = np.linspace(0, max(cur * 2.5, 1.0), 200)
        total = sum(sizes.values())

        for theta, label, style, color in (
            (self.theta_before, "before calibration", "--", "#8a94a3"),
            (self.theta_after, "after calibration", "-", "#2f5fa7"),
        ):
            coef = m.cluster_coef(theta).loc[channel]
            # Spend split across markets in proportion to their size, as in the steady state.
            ys = sum(
                coef[n] * sizes[n] * curve.saturate(xs * sizes[n] / total / sizes[n])
                for n in m.clusters_
            )
            ax.plot(xs, ys, style, color=color, lw=1.6, label=label)
        # The lifts are drawn from the calibrated curve (the last one drawn).
        ax.axvline(cur, color="grey", lw=0.8, ls=":", label="current spend")
        for i, (_, r) in enumerate(self.lifts[self.lifts["channel"] == channel].iterrows()):
            # A lift drawn on the all-markets scale: per period and unit size, times total size,
            # from the curve at the test's counterfactual spend level.
            scale = total / (r["n_periods"] * r["treated_size"])
            x_cf = r["cf_spend"] * scale
            y_cf = float(np.interp(x_cf, xs, ys)) if x_cf <= xs[-1] else float(ys[-1])
            x_pt = x_cf + r["spend_delta"] * scale
            y_pt = y_cf + r["measured"] * scale
            lo, hi = sorted((y_cf + r["ci_lo"] * scale, y_cf + r["ci_hi"] * scale))
            label = f"lift {r['name']}: measured, {self.confidence:.0%} interval"
            draw_lift(ax, (x_cf, y_cf), (x_pt, y_pt), (lo, hi), label, first=i == 0)
        return finish_curve_axes(
            fig,
            ax,
            channel,
            m.period_,
            m.outcome_,
            f"{channel}: response curve before and after calibration",
        )


def draw_lift(ax, replaced: tuple, measured: tuple, interval: tuple, label: str, *, first: bool):
    """A lift on a response-curve figure: an open circle on the curve at the spend the test
    replaced, a filled one at the test's spend with the measured incremental and its interval."""
    (x_cf, y_cf), (x_pt, y_pt), (lo, hi) = replaced, measured, interval
    ax.plot([x_cf, x_pt], [y_cf, y_pt], ":", color="#a12", lw=0.8)
    # one legend entry for the open circles of all lifts
    ax.plot(
        [x_cf],
        [y_cf],
        "o",
        mfc="none",
        color="#a12",
        label="lift: the spend it replaced, on the curve" if first else None,
    )
    # The lift's name goes in the legend: a text label on the plot collides with the curves.
    ax.errorbar(
        [x_pt],
        [y_pt],
        yerr=[[y_pt - lo], [hi - y_pt]],
        fmt="o",
        color="#a12",
        capsize=4,
        label=label,
    )


def finish_curve_axes(fig, ax, channel: str, period: str, outcome: str, title: str):
    """Axis labels, thousands ticks, title and legend of a response-curve figure (both models); (fig, ax)."""
    from matplotlib.ticker import FuncFormatter

    thousands = FuncFormatter(lambda v, _: f"{v:,.0f}")
    ax.xaxis.set_major_formatter(thousands)
    ax.yaxis.set_major_formatter(thousands)
    ax.tick_params(axis="x", labelrotation=20)
    ax.set_xlabel(f"{channel} spend per {period} (all markets)")
    ax.set_ylabel(f"incremental {outcome} per {period}")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left")
    return fig, ax


def calibrate(
    model: ResponseModel,
    lifts: Sequence[Lift],
    *,
    bias_scale: float | Mapping[str, float] = 1.0,
    confidence: float = 0.9,
    conflict_level: float = 0.95,
    n_draws: int = 2000,
    seed: int = 0,
) -> CalibrationResult:
    """Calibrate a fitted :class:`ResponseModel` on experiment lifts.

    Parameters
    ----------
    model : ResponseModel
        Fitted.
    lifts : sequence of Lift
    bias_scale : float or mapping channel -> float, default=1.0
        Prior sd of a calibrated channel's confounding bias, relative to the
        larger of its observational and lift-implied coefficient. A mapping
        gives one scale per channel (1.0 for channels it does not name), e.g.
        a wide prior for a channel whose spend follows demand (branded search)
        and a narrower one for channels whose spend is set by a media plan.
    confidence : float, default=0.9
        Level of the reported intervals.
    conflict_level : float, default=0.95
        Two-sided level of the leave-one-out test that flags conflicting lifts.
    n_draws : int, default=2000
        Posterior draws for the intervals.
    seed : int, default=0

    Returns
    -------
    CalibrationResult

    Raises
    ------
    DataError
        A lift for a channel without spend, outside the panel, or with zero spend change.
    """
    check_is_fitted(model, "theta_")
    designs = [lift_design(model, lf) for lf in lifts]
    p = len(model.theta_)
    w = model.n_coef_per_channel_
    k = len(model.channels_)
    sigma2 = model.sigma2_ * (1 + model.rho_) / (1 - model.rho_)
    calibrated = sorted({d.lift.channel for d in designs}, key=model.channels_.index)

    # Bias parameters: one per (calibrated channel, cluster), added to the cluster's
    # observational coefficient (the global column when there is one market).
    bias_cols, bias_prec = [], []
    pool_override: dict[int, float] = {}
    for ch in calibrated:
        sl = model.column_index(ch)
        rows = [d for d in designs if d.lift.channel == ch]
        implied = sum(d.lift.incremental for d in rows) / sum(
            d.row[sl].sum() if w == 1 else d.row[sl.start] for d in rows
        )
        obs = model.theta_[sl.start]
        scale = bias_scale.get(ch, 1.0) if isinstance(bias_scale, Mapping) else bias_scale
        tau = scale * max(abs(obs), abs(implied)) + 1e-12
        cols = [sl.start] if w == 1 else list(range(sl.start + 1, sl.stop))
        bias_cols += cols
        bias_prec += [1.0 / tau**2] * len(cols)
        if w > 1:
            # Pool the causal deviations on the causal (lift) scale, not the confounded one.
            tau_pool = model.pooling * abs(implied) + 1e-12
            for c in cols:
                pool_override[c] = sigma2 / tau_pool**2
    nb = len(bias_cols)
    E = np.zeros((p, nb))
    for j, c in enumerate(bias_cols):
        E[c, j] = 1.0
    pen = model.penalty_.copy() * (1 + model.rho_) / (1 - model.rho_)
    for c, v in pool_override.items():
        pen[c] = v

    def posterior(use: list[int]) -> tuple[np.ndarray, np.ndarray]:
        FtF, Fty = model.FtF_, model.Fty_
        # Parameters: theta (causal) then bias; observational design is F @ (theta + E b).
        top = np.hstack([FtF, FtF @ E]) / sigma2
        bot = np.hstack([E.T @ FtF, E.T @ FtF @ E]) / sigma2
        P = np.vstack([top, bot])
        P[:p, :p] += np.diag(pen / sigma2)
        P[p:, p:] += np.diag(bias_prec)
        rhs = np.concatenate([Fty, E.T @ Fty]) / sigma2
        for i in use:
            d = designs[i]
            r = np.concatenate([d.row, np.zeros(nb)])
            P += np.outer(r, r) / d.lift.sd**2
            rhs += r * d.lift.incremental / d.lift.sd**2
        cov = np.linalg.inv(P)
        cov = (cov + cov.T) / 2
        return cov @ rhs, cov

    mean_all, cov_all = posterior(list(range(len(designs))))
    theta_after, cov_after = mean_all[:p], cov_all[:p, :p]
    theta_before, cov_before = model.theta_, model.cov_

    zq = stats.norm.ppf(0.5 + conflict_level / 2)
    conflicts, lift_rows = [], []
    for i, d in enumerate(designs):
        others = [j for j in range(len(designs)) if j != i]
        m_loo, c_loo = posterior(others)
        r = np.concatenate([d.row, np.zeros(nb)])
        pred_loo, var_loo = float(r @ m_loo), float(r @ c_loo @ r)
        z = (d.lift.incremental - pred_loo) / np.sqrt(d.lift.sd**2 + var_loo)
        same = [j for j in others if designs[j].lift.channel == d.lift.channel]
        conflict = bool(same) and abs(z) > zq
        if conflict:
            conflicts.append(
                f"lift {d.lift.name} ({d.lift.source}) measured {d.lift.incremental:,.0f} but the curve "
                f"calibrated on the other {d.lift.channel} lifts predicts {pred_loo:,.0f} (z = {z:.2f})"
            )
        sizes = model.size_.to_numpy()
        lift_rows.append(
            {
                "name": d.lift.name,
                "source": d.lift.source,
                "channel": d.lift.channel,
                "start": d.lift.start,
                "end": d.lift.end,
                "n_geos": len(d.lift.treated),
                "n_periods": int(len(d.window)),
                "treated_size": float(sizes[d.geo_mask].sum()),
                "cf_spend": float(d.cf_spend[np.ix_(d.window, np.flatnonzero(d.geo_mask))].sum()),
                "spend_delta": d.lift.spend_delta,
                "measured": d.lift.incremental,
                "ci_lo": d.lift.incremental_ci[0],
                "ci_hi": d.lift.incremental_ci[1],
                "sd": d.lift.sd,
                "predicted_before": float(d.row @ theta_before),
                "predicted_after": float(d.row @ theta_after),
                "predicted_loo": pred_loo,
                "z_loo": float(z),
                "conflict": conflict,
            }
        )
    lifts_df = pd.DataFrame(
        lift_rows,
        columns=[
            "name",
            "source",
            "channel",
            "start",
            "end",
            "n_geos",
            "n_periods",
            "treated_size",
            "cf_spend",
            "spend_delta",
            "measured",
            "ci_lo",
            "ci_hi",
            "sd",
            "predicted_before",
            "predicted_after",
            "predicted_loo",
            "z_loo",
            "conflict",
        ],
    )

    rng = np.random.default_rng(seed)
    channels, lines = _tables(
        model,
        theta_before,
        cov_before,
        theta_after,
        cov_after,
        calibrated,
        confidence,
        n_draws,
        rng,
    )
    notes = [
        "Intervals are from the Gaussian posterior of the curve coefficients given the adstock and saturation "
        "shapes chosen by the fit; the shapes' own uncertainty is not propagated.",
        f"Residual variance inflated by {(1 + model.rho_) / (1 - model.rho_):.2f} for residual autocorrelation {model.rho_:.2f}.",
    ]
    if k and not calibrated:
        notes.append("No lifts: calibrated curves equal the uncalibrated ones.")
    return CalibrationResult(
        model,
        theta_before,
        theta_after,
        cov_before,
        cov_after,
        channels,
        lines,
        lifts_df,
        conflicts,
        confidence,
        designs,
        notes,
    )


def _tables(model, theta_b, cov_b, theta_a, cov_a, calibrated, confidence, n_draws, rng):
    M, labels = model.contribution_matrix()
    sizes = model.cluster_size()
    a = (1 - confidence) / 2
    draws_b = rng.multivariate_normal(theta_b, cov_b, size=n_draws, method="eigh")
    draws_a = rng.multivariate_normal(theta_a, cov_a, size=n_draws, method="eigh")
    line_rows, chan_rows = [], []
    for ch in model.channels_:
        curve = model.curves_[ch]
        current = model.current_spend(ch)
        spend = model.total_spend(ch)
        sl = model.column_index(ch)
        ch_contrib = {"b": 0.0, "a": 0.0}
        ch_draw = {"b": np.zeros(n_draws), "a": np.zeros(n_draws)}
        ch_marg = {"b": np.zeros(n_draws), "a": np.zeros(n_draws)}
        ch_marg_pt = {"b": 0.0, "a": 0.0}
        for c, name in enumerate(model.clusters_):
            i = labels.index((ch, name))
            row = {
                "channel": ch,
                "market": str(name),
                "spend": spend[name],
                "calibrated": ch in calibrated,
                "current_spend": current[name],
            }
            # Marginal outcome per unit spend at the current steady spend: beta * f'(x / S).
            dslope = float(curve.derivative(np.array(current[name] / sizes[name])))
            for tag, theta, draws in (("before", theta_b, draws_b), ("after", theta_a, draws_a)):
                key = tag[0]
                beta = theta[sl.start] + (
                    theta[sl.start + 1 + c] if model.n_coef_per_channel_ > 1 else 0.0
                )
                bdraw = draws[:, sl.start] + (
                    draws[:, sl.start + 1 + c] if model.n_coef_per_channel_ > 1 else 0.0
                )
                contrib, cdraw = float(M[i] @ theta), draws @ M[i]
                row[f"beta_{tag}"] = beta
                row[f"beta_{tag}_lo"], row[f"beta_{tag}_hi"] = np.quantile(bdraw, [a, 1 - a])
                row[f"contribution_{tag}"] = contrib
                row[f"contribution_{tag}_lo"], row[f"contribution_{tag}_hi"] = np.quantile(
                    cdraw, [a, 1 - a]
                )
                sp = spend[name] or np.nan
                row[f"roas_{tag}"] = contrib / sp
                row[f"roas_{tag}_lo"], row[f"roas_{tag}_hi"] = np.quantile(cdraw / sp, [a, 1 - a])
                row[f"mroas_{tag}"] = beta * dslope
                row[f"mroas_{tag}_lo"], row[f"mroas_{tag}_hi"] = np.quantile(
                    bdraw * dslope, [a, 1 - a]
                )
                ch_contrib[key] += contrib
                ch_draw[key] += cdraw
                # Channel-level marginal ROAS: spend-weighted mean of the markets'.
                w = current[name] / (sum(current.values()) or 1.0)
                ch_marg[key] += w * bdraw * dslope
                ch_marg_pt[key] += w * beta * dslope
            line_rows.append(row)
        tot = sum(spend.values()) or np.nan
        crow = {"channel": ch, "spend": sum(spend.values()), "calibrated": ch in calibrated}
        for tag in ("before", "after"):
            key = tag[0]
            crow[f"contribution_{tag}"] = ch_contrib[key]
            crow[f"contribution_{tag}_lo"], crow[f"contribution_{tag}_hi"] = np.quantile(
                ch_draw[key], [a, 1 - a]
            )
            crow[f"roas_{tag}"] = ch_contrib[key] / tot
            crow[f"roas_{tag}_lo"], crow[f"roas_{tag}_hi"] = np.quantile(
                ch_draw[key] / tot, [a, 1 - a]
            )
            crow[f"mroas_{tag}"] = ch_marg_pt[key]
            crow[f"mroas_{tag}_lo"], crow[f"mroas_{tag}_hi"] = np.quantile(ch_marg[key], [a, 1 - a])
        chan_rows.append(crow)
    channels = pd.DataFrame(chan_rows).set_index("channel")
    lines = pd.DataFrame(line_rows).set_index(["channel", "market"])
    return channels, lines
