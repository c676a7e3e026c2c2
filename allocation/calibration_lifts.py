"""Lifts: an experiment readout as a calibration input, its checks, and its counterfactual spend.

A :class:`Lift` is what ``liftlab readout`` writes (readout.json): the incremental outcome with its
interval, for a spend change of one channel in given geos and dates. Both response models
(:mod:`allocation.calibration` and :mod:`allocation.structural`) enter it as a likelihood term on
the curve's predicted incremental of exactly that intervention.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from allocation.response_model import ResponseModel
from causal.base import check_is_fitted
from causal.errors import DataError
from causal.jsonfile import read_json
from causal.panel import Panel


@dataclass(frozen=True)
class EarlyWindow:
    """A lift's first periods: their observed incremental and its normal law given the lift's total
    (mean ``E[early] + slope_on_total (total - E[total])``, sd ``sd_given_total``)."""

    start: str
    end: str
    incremental: float
    slope_on_total: float
    sd_given_total: float

    @classmethod
    def from_dict(cls, d: object, source: str) -> EarlyWindow:
        if not isinstance(d, dict):
            raise DataError(f"{source}: lift 'early' must be a JSON object, got {d!r}")
        for key in ("start", "end", "incremental", "slope_on_total", "sd_given_total"):
            if d.get(key) is None:
                raise DataError(f"{source}: lift 'early' has no '{key}'")
        values = {}
        for key in ("incremental", "slope_on_total", "sd_given_total"):
            v = d[key]
            if isinstance(v, (str, bool)) or not isinstance(v, (int, float)) or not np.isfinite(v):
                raise DataError(f"{source}: lift 'early.{key}' must be a finite number, got {v!r}")
            values[key] = float(v)
        if not values["sd_given_total"] > 0:
            raise DataError(
                f"{source}: lift 'early.sd_given_total' must be > 0, got {values['sd_given_total']}"
            )
        return cls(str(d["start"]), str(d["end"]), **values)


_REQUIRED = ("channel", "treated", "test_period", "incremental", "incremental_ci", "spend_delta")


@dataclass(frozen=True)
class Lift:
    """One experiment's lift as calibration uses it (the readout.json keys).

    Attributes
    ----------
    channel : str
    treated : tuple of str
    start, end : str
        The test window (inclusive).
    incremental : float
        Observed minus counterfactual outcome over the window, treated geos summed.
    incremental_ci : (float, float)
    confidence : float
    spend_delta : float
        Observed minus counterfactual spend of the channel over the window.
    source : str
        File or registry entry it came from, used in messages.
    early : EarlyWindow, optional
        The readout's first periods' incremental given the total (readout.json ``early``,
        :func:`experiments.readout_windows.early_window`): how the effect ramped in, which the
        structural model uses as a second likelihood term on the channel's carryover.
    """

    channel: str
    treated: tuple[str, ...]
    start: str
    end: str
    incremental: float
    incremental_ci: tuple[float, float]
    confidence: float
    spend_delta: float
    source: str = "<lift>"
    name: str = ""
    outcome: str | None = None  # the readout's outcome column, when it names one
    early: EarlyWindow | None = None

    @property
    def sd(self) -> float:
        """Standard deviation implied by the interval (normal approximation)."""
        z = stats.norm.ppf(0.5 + self.confidence / 2)
        return (self.incremental_ci[1] - self.incremental_ci[0]) / (2 * z)

    @classmethod
    def from_dict(cls, d: dict, source: str = "<lift>") -> Lift:
        """Build from a readout.json dict, raising :class:`DataError` naming the missing or bad key."""
        if not isinstance(d, dict):
            raise DataError(
                f"{source}: a lift must be a JSON object (readout.json), got {type(d).__name__}"
            )
        for key in _REQUIRED:
            if d.get(key) is None:
                hint = " (the readout needs --channel)" if key in ("channel", "spend_delta") else ""
                raise DataError(f"{source}: lift has no '{key}'{hint}")
        for key in ("incremental", "spend_delta", "confidence"):
            v = d.get(key)
            if v is not None and (isinstance(v, (str, bool)) or not isinstance(v, (int, float))):
                raise DataError(f"{source}: lift '{key}' must be a number, got {v!r}")
        ci_raw = d["incremental_ci"]
        if not isinstance(ci_raw, (list, tuple)) or any(
            isinstance(v, (str, bool)) or not isinstance(v, (int, float)) for v in ci_raw
        ):
            raise DataError(
                f"{source}: lift 'incremental_ci' must be two numbers [lo, hi], got {ci_raw!r}"
            )
        try:
            ci = tuple(float(v) for v in d["incremental_ci"])
            period = [str(v) for v in d["test_period"]]
            treated = tuple(str(g) for g in d["treated"])
            incremental = float(d["incremental"])
            spend_delta = float(d["spend_delta"])
            conf = float(d.get("confidence", 0.9) or 0.9)
        except (TypeError, ValueError) as exc:
            raise DataError(f"{source}: lift has a non-numeric or malformed value ({exc})") from exc
        if len(ci) != 2 or not ci[0] < ci[1] or not all(np.isfinite(ci)):
            raise DataError(
                f"{source}: incremental_ci must be [lo, hi] with lo < hi, got {d['incremental_ci']!r}"
            )
        if not np.isfinite(incremental):
            raise DataError(
                f"{source}: lift 'incremental' is {incremental}; it must be a finite number"
            )
        if not ci[0] <= incremental <= ci[1]:
            raise DataError(
                f"{source}: lift 'incremental' {incremental:,.2f} lies outside its own interval "
                f"[{ci[0]:,.2f}, {ci[1]:,.2f}]"
            )
        if len(period) != 2:
            raise DataError(
                f"{source}: test_period must be [first_date, last_date], got {d['test_period']!r}"
            )
        if not treated:
            raise DataError(f"{source}: lift has no treated geos")
        if not np.isfinite(spend_delta) or spend_delta == 0:
            raise DataError(
                f"{source}: spend_delta of channel '{d['channel']}' is {spend_delta}; "
                "a lift whose spend did not change cannot calibrate a curve"
            )
        if not 0 < conf < 1:
            raise DataError(f"{source}: confidence must be in (0, 1), got {conf}")
        name = str(d.get("name") or f"{d['channel']} {period[0]}..{period[1]}")
        early = None if d.get("early") is None else EarlyWindow.from_dict(d["early"], source)
        if early is not None and not period[0] <= early.start <= early.end < period[1]:
            raise DataError(
                f"{source}: lift 'early' window {early.start}..{early.end} is not the start of its "
                f"test_period {period[0]}..{period[1]}"
            )
        return cls(
            str(d["channel"]),
            treated,
            period[0],
            period[1],
            incremental,
            ci,
            conf,
            spend_delta,
            source,
            name,
            None if d.get("outcome") is None else str(d["outcome"]),
            early,
        )


def load_lift(path: str | Path) -> Lift:
    """Read a readout.json file as a :class:`Lift` (strict JSON through :func:`causal.jsonfile.read_json`)."""
    return Lift.from_dict(read_json(path, "lift file"), str(path))


def validate_lifts(lifts: Sequence[Lift], panel: Panel) -> None:
    """:func:`validate_lift` on each, and no experiment twice: the same channel, markets and window
    given again (the same file twice, a copy, or a registry readout also passed as a file) would
    count its evidence double."""
    seen: dict[tuple, Lift] = {}
    for lf in lifts:
        validate_lift(lf, panel)
        key = (lf.channel, tuple(sorted(lf.treated)), lf.start, lf.end)
        if key in seen:
            raise DataError(
                f"{lf.source}: the lift of '{lf.channel}' in {', '.join(key[1])} from {lf.start} to "
                f"{lf.end} is already given by {seen[key].source}"
            )
        seen[key] = lf


def sign_contradiction(lift: Lift) -> str | None:
    """A warning when the lift's interval lies wholly on the side its spend change rules out for a
    channel that cannot lower the outcome (above zero when spend fell, below zero when it rose);
    None otherwise.

    With intervals at 90% such a readout comes from a channel of the expected sign less than 5% of
    the time. Calibration uses it as read, and a single one can drain a line from a plan, so the
    usual remedy is to run the test again before relying on it (the closed-loop backtest's daily
    loop does: ``DailyLoop(replicate_surprises=True)``).
    """
    lo, hi = lift.incremental_ci
    if not ((lift.spend_delta < 0 and lo > 0) or (lift.spend_delta > 0 and hi < 0)):
        return None
    moved = "fell" if lift.spend_delta < 0 else "rose"
    side = "above" if lo > 0 else "below"
    return (
        f"{lift.source}: {lift.channel}'s spend {moved} by {abs(lift.spend_delta):,.0f} but the "
        f"outcome's interval [{lo:,.0f}, {hi:,.0f}] lies wholly {side} zero, which a channel that "
        "cannot lower the outcome does not give; it is used as read: run the test again before "
        "relying on it"
    )


def validate_lift(lift: Lift, panel: Panel) -> None:
    """Check a lift against a panel before any fit: outcome, channel spend column, treated geos, window."""
    src = lift.source
    if lift.outcome is not None and lift.outcome != panel.y:
        raise DataError(
            f"{src}: key 'outcome' is '{lift.outcome}' but the panel's outcome is '{panel.y}'"
        )
    if lift.channel not in panel.channels:
        raise DataError(
            f"{src}: lift channel '{lift.channel}' has no spend column 'spend_{lift.channel}' in "
            f"{panel.source} (channels: {', '.join(panel.channels) or 'none'})"
        )
    known = set(panel.geos)
    for g in lift.treated:
        if g not in known:
            raise DataError(f"{src}: treated geo '{g}' is not in {panel.source}")
    try:
        s, e = pd.Timestamp(lift.start), pd.Timestamp(lift.end)
    except ValueError as exc:
        raise DataError(f"{src}: test_period {lift.start}..{lift.end} is not ISO dates") from exc
    if s < panel.dates[0] or e > panel.dates[-1] or s > e:
        raise DataError(
            f"{src}: lift window {lift.start}..{lift.end} is outside the panel {panel.source} "
            f"({panel.dates[0].date()} to {panel.dates[-1].date()})"
        )


@dataclass
class _LiftDesign:
    lift: Lift
    row: np.ndarray  # loadings over theta: predicted incremental = row @ theta
    cf_spend: np.ndarray  # (T, G) counterfactual spend of the channel
    geo_mask: np.ndarray  # (G,)
    window: np.ndarray  # row positions


def counterfactual_spend(
    x: np.ndarray, window: np.ndarray, cols: np.ndarray, lift: Lift
) -> np.ndarray:
    """The channel's (T, G) spend had the lift's intervention not happened: observed minus ``spend_delta``.

    The change is spread over the treated cells in proportion to the observed spend (exact for any
    multiplier but zero), else to the 28 periods before the window (a go-dark).

    Raises
    ------
    DataError
        If ``spend_delta`` exceeds the observed spend in the treated geos and window.
    """
    obs = x[np.ix_(window, cols)]
    if obs.sum() > 1e-9 * abs(lift.spend_delta):
        share = obs / obs.sum()
    else:
        pre = x[max(0, window[0] - 28) : window[0], cols]
        base = pre.mean(axis=0) if pre.size else np.ones(len(cols))
        if base.sum() <= 0:
            base = np.ones(len(cols))
        share = np.broadcast_to(base / base.sum() / len(window), obs.shape)
    cf_cells = obs - share * lift.spend_delta
    if (cf_cells < -1e-6 * abs(lift.spend_delta)).any():
        raise DataError(
            f"{lift.source}: spend_delta {lift.spend_delta:,.2f} exceeds the observed spend "
            f"{obs.sum():,.2f} of channel '{lift.channel}' in the treated geos and window"
        )
    cf = x.copy()
    cf[np.ix_(window, cols)] = np.maximum(cf_cells, 0.0)
    return cf


def lift_design(model: ResponseModel, lift: Lift) -> _LiftDesign:
    """Loadings of a lift's predicted incremental on the model's coefficients (validates the lift)."""
    check_is_fitted(model, "theta_")
    src = lift.source
    if lift.channel not in model.channels_:
        raise DataError(
            f"{src}: lift channel '{lift.channel}' has no spend column 'spend_{lift.channel}' in the panel "
            f"(channels: {', '.join(model.channels_)})"
        )
    index = {g: i for i, g in enumerate(model.geos_)}
    for g in lift.treated:
        if g not in index:
            raise DataError(f"{src}: treated geo '{g}' is not in the panel")
    dates = model.dates_
    try:
        s, e = pd.Timestamp(lift.start), pd.Timestamp(lift.end)
    except ValueError as exc:
        raise DataError(f"{src}: test_period {lift.start}..{lift.end} is not ISO dates") from exc
    if s < dates[0] or e > dates[-1] or s > e:
        raise DataError(
            f"{src}: lift window {lift.start}..{lift.end} is outside the panel "
            f"({dates[0].date()} to {dates[-1].date()})"
        )
    window = np.flatnonzero((dates >= s) & (dates <= e))
    if window.size == 0:
        raise DataError(f"{src}: lift window {lift.start}..{lift.end} holds no panel date")
    cols = np.array([index[g] for g in lift.treated])
    mask = np.zeros(len(model.geos_), dtype=bool)
    mask[cols] = True
    x = model.spend_[lift.channel]
    cf = counterfactual_spend(x, window, cols, lift)
    f_obs = model.features(lift.channel)
    f_cf = model.features(lift.channel, cf)
    diff = np.zeros_like(f_obs)
    diff[window] = (f_obs - f_cf)[window]
    row = model.loadings(lift.channel, diff, mask)
    return _LiftDesign(lift, row, cf, mask, window)
