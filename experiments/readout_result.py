"""Result objects of lift readouts: :class:`Readout` and :class:`MultiCellReadout`.

They hold numbers computed by :mod:`experiments.readout`; nothing here fits a
model. Totals and incremental signups are kept apart everywhere: ``observed``
is everything that happened in the treated geos, ``incremental`` only what
the treatment caused.

Both follow the result protocol of :mod:`causal.summary`: ``summary()`` returns a
:class:`~causal.summary.Summary` with readable numbers, ``to_dict()`` the JSON
contract, ``plot(ax=None)`` returns ``(fig, ax)`` and never shows, and
``conf_int(confidence=None)`` gives the intervals at the readout's level.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from causal.conformal import PlaceboResult
from causal.errors import ConfigError
from causal.inference import EffectInference
from causal.summary import Summary, fmt_frame, fmt_number
from experiments.readout_windows import early_window


def _iso(d) -> str:
    return pd.Timestamp(d).date().isoformat()


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0 or not np.isfinite(b):
        return None
    return float(a / b)


def _check_level(result: Any, confidence: float | None) -> str:
    """The level's column label; a level other than the readout's cannot be given without a rerun."""
    if confidence is not None and not np.isclose(float(confidence), result.confidence):
        raise ConfigError(
            f"{type(result).__name__}.conf_int: the intervals were computed at confidence "
            f"{result.confidence:g}, not {float(confidence):g}; they come from the readout's own "
            f"tests (permutations, placebos), so read the experiment out again with "
            f"confidence={float(confidence):g}"
        )
    return f"{result.confidence:.0%}"


@dataclass
class Readout:
    """The readout of one treated group: total vs incremental signups, interval, p-value, cost.

    INTERFACE.md's readout.json keys come first, then extras.

    Attributes
    ----------
    outcome, estimator : str
    confidence : float
    treated, control : list of str
    pre_period, test_period : tuple of Timestamp
    observed : float
        Total outcome of the treated geos over the test.
    counterfactual : float
        Estimated total without the treatment.
    incremental : float
        ``observed - counterfactual``: treated-average effect x number of treated geos.
    incremental_ci, lift, lift_ci, p_value
    channel : str or None
    spend_delta, incremental_per_spend, cost_per_incremental : float or None
    att : float
        Average effect per treated geo per period.
    series : DataFrame
        Per date (pre and test): ``observed``, ``counterfactual`` (treated totals),
        ``lower``, ``upper`` (pointwise band, test only), ``incremental``,
        ``cumulative_incremental`` (test only) and ``period`` (``pre``/``test``).
    weights : Series or None
        Donor weights by geo, when the estimator weights donors.
    fit : dict
        Pre-period ``rmse`` (per treated-average period), ``r2``, ``scaled_l2_imbalance``.
    placebo : dict of PlaceboResult
        ``space`` and ``time`` checks, when run.
    inference_method : str
    notes : list of str
    tests : list of dict
        Every test behind the p-value and the interval: ``test``, ``p_value``,
        ``method`` (one entry when one test gives both).
    inference_choice : str or None
        The ``inference`` asked for (the one that ran is in ``inference_method``).
    """

    outcome: str
    estimator: str
    confidence: float
    treated: list[str]
    control: list[str]
    pre_period: tuple
    test_period: tuple
    observed: float
    counterfactual: float
    incremental: float
    incremental_ci: tuple[float, float]
    lift: float | None
    lift_ci: tuple[float | None, float | None]
    p_value: float
    channel: str | None
    spend_delta: float | None
    incremental_per_spend: float | None
    cost_per_incremental: float | None
    att: float
    period_name: str
    series: pd.DataFrame
    weights: pd.Series | None
    fit: dict
    placebo: dict = field(default_factory=dict)
    inference_method: str = ""
    spend: dict | None = None
    seed: int = 0
    notes: list[str] = field(default_factory=list)
    tests: list[dict] = field(default_factory=list)
    inference_choice: str | None = None

    # -- construction ---------------------------------------------------------
    @classmethod
    def build(
        cls,
        *,
        panel,
        counterfactual_pre: np.ndarray,
        counterfactual_post: np.ndarray,
        estimator_name: str,
        confidence: float,
        treated,
        control,
        pre_period,
        test_period,
        pre_dates,
        post_dates,
        y_pre,
        y_post,
        inference: EffectInference,
        placebo: dict[str, PlaceboResult],
        channel,
        spend,
        seed,
        extra_notes=(),
        tests=(),
        inference_choice: str | None = None,
        weights: np.ndarray | None = None,
        diagnostics: dict[str, float] | None = None,
    ) -> Readout:
        """A readout from the fitted treated-average counterfactual (data units) and its inference.

        ``weights`` are the donor weights (in ``control`` order) of an estimator that weights
        donors; ``diagnostics`` the pre-period fit measures it computed itself
        (``CounterfactualEstimator.pre_fit_diagnostics``), the rest computed here.
        """
        n1 = len(treated)
        cf_pre = np.asarray(counterfactual_pre, float)
        cf_post = np.asarray(counterfactual_post, float)
        diagnostics = dict(diagnostics or {})
        observed = float(y_post.sum() * n1)
        incremental = float(inference.effect * n1)
        counterfactual = observed - incremental
        lo, hi = inference.effect_ci[0] * n1, inference.effect_ci[1] * n1

        def lift_of(inc: float) -> float | None:
            return _ratio(inc, observed - inc)

        idx = pre_dates.append(post_dates)
        eff = y_post - cf_post
        series = pd.DataFrame(
            {
                "period": ["pre"] * len(pre_dates) + ["test"] * len(post_dates),
                "observed": np.concatenate([y_pre, y_post]) * n1,
                "counterfactual": np.concatenate([cf_pre, cf_post]) * n1,
                "lower": np.concatenate(
                    [np.full(len(pre_dates), np.nan), inference.counterfactual_lo * n1]
                ),
                "upper": np.concatenate(
                    [np.full(len(pre_dates), np.nan), inference.counterfactual_hi * n1]
                ),
                "incremental": np.concatenate([(y_pre - cf_pre), eff]) * n1,
                "cumulative_incremental": np.concatenate(
                    [np.full(len(pre_dates), np.nan), np.cumsum(eff) * n1]
                ),
            },
            index=pd.DatetimeIndex(idx, name="date"),
        )

        if weights is not None:
            weights = pd.Series(np.asarray(weights, float), index=list(control), name="weight")
        resid = y_pre - cf_pre
        sst = float(np.sum((y_pre - y_pre.mean()) ** 2))
        l2 = diagnostics.get("scaled_l2_imbalance")
        fit = {
            "rmse": float(diagnostics.get("rmse", np.sqrt(np.mean(resid**2)))),
            "r2": float(diagnostics.get("r2", 1 - np.sum(resid**2) / sst if sst > 0 else np.nan)),
            "scaled_l2_imbalance": None if l2 is None else float(l2),
            "mape": float(np.mean(np.abs(resid) / np.maximum(np.abs(y_pre), 1e-12))),
        }

        spend_delta = None
        spend_moved = True
        if spend is not None:
            spend_delta = spend["observed"] - spend["counterfactual"]
            spend_moved = bool(spend.get("moved", abs(spend_delta) > 1e-9))
        notes = [f"Inference: {inference.method}."]
        notes.append(
            f"Incremental = treated-average effect x {n1} treated geo(s); observed totals include "
            "everything that would have happened anyway."
        )
        if fit["r2"] == fit["r2"] and fit["r2"] < 0.5:
            notes.append(
                f"Weak pre-period fit (R² {fit['r2']:.2f}): the counterfactual may be biased; "
                "consider more pre-period or other controls."
            )
        tests = list(tests) or [
            {"test": "inference", "p_value": float(inference.p_value), "method": inference.method}
        ]
        alpha = 1 - confidence
        if (inference.p_value <= alpha) != (lo > 0 or hi < 0):
            if len(tests) > 1:
                shown = "; ".join(f"{t['test']}: p = {t['p_value']:.3f}" for t in tests)
                notes.append(
                    f"The p-value and the interval come from two tests and disagree on significance at "
                    f"{confidence:.0%} ({shown}): the headline p-value tests no effect in any period "
                    "(the whole path), the interval is for the average effect; read the interval."
                )
            else:
                notes.append(
                    "The p-value and the interval disagree on significance at the edge: the interval's "
                    "ends are searched to a tolerance and the p-value lies on a finite lattice."
                )
        if not lo <= incremental <= hi:
            notes.append(
                "The interval does not contain the point estimate: the conformal refit on the whole "
                "period under each null moves the fit (a sign of an unstable pre-period fit); "
                "read the interval, and check the placebos."
            )
        for kind, res in placebo.items():
            if len(res.scores) == 0:
                what = (
                    "not enough history before the test for one placebo window of the test's length"
                    if kind == "time"
                    else "no donor could serve as a placebo"
                )
                notes.append(f"Placebo in {kind}: {what}; no placebo check.")
            else:
                notes.append(
                    f"Placebo in {kind}: {len(res.scores)} placebos, rank p-value {res.p_value:.3f} "
                    "(standardised effect vs placebos)."
                )
        notes += list(extra_notes)
        if spend is not None and not spend_moved:
            notes.append(
                f"The test did not move the spend of '{channel}': the change ({spend_delta:,.4g}) is "
                f"within the spend's own pre-period noise (±{spend.get('noise', 0.0):,.4g} over a window "
                f"of the test's length, {confidence:.0%}); no cost per incremental is reported."
            )
        elif spend is not None and spend.get("method"):
            notes.append(f"Spend counterfactual of '{channel}': {spend['method']}.")
        if spend is not None and not spend_moved:
            spend_for_ratio = None
        else:
            spend_for_ratio = spend_delta
        return cls(
            outcome=panel.y,
            estimator=estimator_name,
            confidence=confidence,
            treated=list(treated),
            control=list(control),
            pre_period=tuple(pre_period),
            test_period=tuple(test_period),
            observed=observed,
            counterfactual=counterfactual,
            incremental=incremental,
            incremental_ci=(float(lo), float(hi)),
            lift=lift_of(incremental),
            lift_ci=(lift_of(lo), lift_of(hi)),
            p_value=float(inference.p_value),
            channel=channel,
            spend_delta=spend_delta,
            incremental_per_spend=_ratio(incremental, spend_for_ratio),
            cost_per_incremental=_ratio(spend_for_ratio, incremental) if spend_for_ratio else None,
            att=float(eff.mean()),
            period_name=panel.period_name,
            series=series,
            weights=weights,
            fit=fit,
            placebo=placebo,
            inference_method=inference.method,
            spend=spend,
            seed=seed,
            notes=notes,
            tests=tests,
            inference_choice=inference_choice,
        )

    # -- verbs ----------------------------------------------------------------
    @property
    def n_treated(self) -> int:
        return len(self.treated)

    @property
    def n_test_periods(self) -> int:
        return int((self.series["period"] == "test").sum())

    def conf_int(self, confidence: float | None = None) -> pd.DataFrame:
        """Intervals of the incremental total and the lift, level in the column names.

        Parameters
        ----------
        confidence : float, optional
            The level; only the readout's own (``None``, the default) is available, any other
            raises a :class:`~causal.errors.ConfigError` saying to read the test out again.
        """
        level = _check_level(self, confidence)
        return pd.DataFrame(
            {
                f"lower {level}": [self.incremental_ci[0], self.lift_ci[0]],
                f"upper {level}": [self.incremental_ci[1], self.lift_ci[1]],
            },
            index=pd.Index(["incremental", "lift"], name="quantity"),
        )

    @property
    def table(self) -> pd.DataFrame:
        """Total and incremental signups kept apart, with intervals where they exist."""
        level = f"{self.confidence:.0%}"
        rows = [
            ("observed (total) " + self.outcome, self.observed, None, None),
            (
                "counterfactual (would have happened anyway)",
                self.counterfactual,
                self.observed - self.incremental_ci[1],
                self.observed - self.incremental_ci[0],
            ),
            ("incremental " + self.outcome, self.incremental, *self.incremental_ci),
            ("lift", self.lift, *self.lift_ci),
            (
                f"effect per treated geo per {self.period_name}",
                self.att,
                self.incremental_ci[0] / (self.n_treated * self.n_test_periods),
                self.incremental_ci[1] / (self.n_treated * self.n_test_periods),
            ),
        ]
        if self.channel is not None:
            sd = self.spend_delta
            # No ratio (and no interval of it) when the test did not move spend.
            ci = [
                _ratio(x, sd) if self.incremental_per_spend is not None else None
                for x in self.incremental_ci
            ]
            rows += [
                (f"spend change ({self.channel})", sd, None, None),
                (
                    "incremental per unit spend",
                    self.incremental_per_spend,
                    min(ci, key=_nan_key),
                    max(ci, key=_nan_key),
                ),
                ("cost per incremental", self.cost_per_incremental, None, None),
            ]
        frame = pd.DataFrame(
            rows, columns=["quantity", "estimate", f"lower {level}", f"upper {level}"]
        )
        return frame.set_index("quantity")

    @property
    def text(self) -> str:
        """A short reading in plain words."""
        level = f"{self.confidence:.0%}"
        start, end = (_iso(d) for d in self.test_period)
        lift = f"{self.lift:+.1%}" if self.lift is not None else "n/a"
        lo, hi = self.incremental_ci
        s = (
            f"Over {start}..{end} the {self.n_treated} treated geo(s) had {self.observed:,.0f} {self.outcome} in total, "
            f"of which {self.incremental:,.0f} were incremental ({level} interval {lo:,.0f} to {hi:,.0f}; "
            f"lift {lift}, two-sided p = {self.p_value:.3f}); about {self.counterfactual:,.0f} would have "
            f"happened anyway."
        )
        if self.channel is not None and self.spend_delta is not None:
            cpi = (
                f"{self.cost_per_incremental:,.2f}"
                if self.cost_per_incremental is not None
                else "n/a"
            )
            s += (
                f" Spend of '{self.channel}' changed by {self.spend_delta:,.0f}; cost per incremental "
                f"{self.outcome}: {cpi}."
            )
        return s

    def summary(self) -> Summary:
        """The headline, the table and numbered notes (inference method, warnings).

        Numbers are written for a reader (``90,720``, never ``9.072e+04``); the table is kept
        as ``summary().tables["readout"]``.
        """
        table = self.table
        lines = [
            f"Lift readout ({self.estimator}, {self.outcome})",
            self.text,
            "",
            fmt_frame(table, digits=4),
            "",
            f"pre-period fit: RMSE {fmt_number(self.fit['rmse'], 4)}, "
            f"R² {fmt_number(self.fit['r2'], 3)}"
            + (
                f", scaled L2 imbalance {fmt_number(self.fit['scaled_l2_imbalance'], 4)}"
                if self.fit.get("scaled_l2_imbalance") is not None
                else ""
            ),
            "",
        ]
        lines += [f"{i}. {n}" for i, n in enumerate(self.notes, 1)]
        return Summary("\n".join(lines), {"readout": table})

    def to_dict(self) -> dict[str, Any]:
        """readout.json: INTERFACE.md's keys, then extras (series, weights, fit, placebos, notes)."""
        test = self.series[self.series["period"] == "test"]
        out: dict[str, Any] = {
            "outcome": self.outcome,
            "estimator": self.estimator,
            "confidence": self.confidence,
            "treated": list(self.treated),
            "control": list(self.control),
            "pre_period": [_iso(d) for d in self.pre_period],
            "test_period": [_iso(d) for d in self.test_period],
            "observed": self.observed,
            "counterfactual": self.counterfactual,
            "incremental": self.incremental,
            "incremental_ci": list(self.incremental_ci),
            "lift": self.lift,
            "lift_ci": list(self.lift_ci),
            "p_value": self.p_value,
            "channel": self.channel,
            "spend_delta": self.spend_delta,
            "incremental_per_spend": self.incremental_per_spend,
            "cost_per_incremental": self.cost_per_incremental,
            # extras
            "att": self.att,
            "period": self.period_name,
            "n_treated": self.n_treated,
            "n_test_periods": self.n_test_periods,
            "inference_method": self.inference_method,
            "seed": self.seed,
            "fit": dict(self.fit),
            "weights": None
            if self.weights is None
            else {k: float(v) for k, v in self.weights.items()},
            "spend": None
            if self.spend is None
            else {
                "observed": self.spend["observed"],
                "counterfactual": self.spend["counterfactual"],
                "method": self.spend.get("method"),
                "noise": self.spend.get("noise"),
                "moved": self.spend.get("moved", True),
            },
            "inference": self.inference_choice,
            "tests": [dict(t) for t in self.tests],
            "series": {
                "date": [_iso(d) for d in test.index],
                "observed": test["observed"].tolist(),
                "counterfactual": test["counterfactual"].tolist(),
                "lower": test["lower"].tolist(),
                "upper": test["upper"].tolist(),
                "incremental": test["incremental"].tolist(),
                "cumulative_incremental": test["cumulative_incremental"].tolist(),
            },
            "placebo": {k: v.to_dict() for k, v in self.placebo.items()},
            "notes": list(self.notes),
            "early": self.early_window(),
        }
        return out

    def early_window(self) -> dict | None:
        """The first periods' incremental given the total (:func:`experiments.readout_windows.early_window`):
        what the daily series says about the channel's carryover; None without a usable interval."""
        lo, hi = self.incremental_ci
        if lo is None or hi is None or self.incremental is None:
            return None
        return early_window(
            self.series, self.incremental, (lo, hi), self.confidence, self.period_name
        )

    # -- plots ----------------------------------------------------------------
    def plot(self, *, kind: str = "counterfactual", ax=None):
        """Draw one view on ``ax`` (or a new figure); returns ``(fig, ax)`` and never shows it.

        ``kind``: ``"counterfactual"`` (observed vs counterfactual with the
        band), ``"incremental"`` (pointwise), ``"cumulative"``, ``"placebo"``
        (placebo-in-space distribution), ``"weights"`` (donor weights).
        """
        from experiments.readout_plots import plot_readout

        return plot_readout(self, kind=kind, ax=ax)


def _nan_key(x):
    return -np.inf if x is None else x


@dataclass
class MultiCellReadout:
    """Readouts of several disjoint treated cells read against the same untreated geos."""

    cells: dict[str, Readout]

    @property
    def table(self) -> pd.DataFrame:
        rows = []
        for name, r in self.cells.items():
            rows.append(
                {
                    "cell": name,
                    "treated": ", ".join(r.treated),
                    "observed": r.observed,
                    "counterfactual": r.counterfactual,
                    "incremental": r.incremental,
                    "incremental_lo": r.incremental_ci[0],
                    "incremental_hi": r.incremental_ci[1],
                    "lift": r.lift,
                    "p_value": r.p_value,
                    "cost_per_incremental": r.cost_per_incremental,
                }
            )
        return pd.DataFrame(rows).set_index("cell")

    @property
    def text(self) -> str:
        return "\n".join(f"[{name}] {r.text}" for name, r in self.cells.items())

    @property
    def confidence(self) -> float:
        return next(iter(self.cells.values())).confidence

    def conf_int(self, confidence: float | None = None) -> pd.DataFrame:
        """Every cell's intervals (:meth:`Readout.conf_int`), indexed by cell and quantity."""
        _check_level(self, confidence)
        return pd.concat({name: r.conf_int() for name, r in self.cells.items()}, names=["cell"])

    def summary(self) -> Summary:
        """Every cell's reading and one table of the cells, numbers readable."""
        table = self.table
        return Summary(
            "Multi-cell lift readout\n" + self.text + "\n\n" + fmt_frame(table, digits=4),
            {"cells": table},
        )

    def to_dict(self) -> dict[str, Any]:
        """``{"cells": {name: readout.json of the cell}}`` plus the shared settings."""
        first = next(iter(self.cells.values()))
        return {
            "multi_cell": True,
            "outcome": first.outcome,
            "estimator": first.estimator,
            "confidence": first.confidence,
            "test_period": [_iso(d) for d in first.test_period],
            "control": list(first.control),
            "cells": {name: r.to_dict() for name, r in self.cells.items()},
        }

    def plot(self, *, ax=None):
        """Lift of every cell with its interval; returns ``(fig, ax)`` and never shows it."""
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(6, 3))
        else:
            fig = ax.figure
        names = list(self.cells)
        for i, n in enumerate(names):
            r = self.cells[n]
            # A line from lo to hi (not an error bar): a conformal interval may exclude the estimate.
            if r.lift_ci[0] is not None and r.lift_ci[1] is not None:
                ax.hlines(i, r.lift_ci[0], r.lift_ci[1], color="#2f5fa7", lw=2)
            ax.plot([r.lift if r.lift is not None else np.nan], [i], "o", color="#a12")
        ax.set_yticks(range(len(names)), names)
        from matplotlib.ticker import PercentFormatter

        ax.axvline(0, color="black", lw=0.8)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlabel(
            f"lift (dot: estimate; line: {next(iter(self.cells.values())).confidence:.0%} interval)"
        )
        ax.set_title("Lift per cell")
        return fig, ax
