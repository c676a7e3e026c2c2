"""Readouts by geo-level methods: GBR (Vaver & Koehler 2011) and Trimmed Match (Chen & Au 2022).

These methods see each geo (GBR) or each matched pair (Trimmed Match) as one
observation of the whole test window, not a time series, and estimate the
return on the spend change (iROAS) or, with no channel, the effect per
treated geo / pair. They fill the same :class:`~experiments.readout_result.Readout`
as :func:`experiments.readout.read_out` (which dispatches here for
``estimator="gbr"`` or ``"trimmed_match"``):

* ``incremental`` = estimate x the spend change of the treated geos (with a
  channel) or x the number of treated geos / pairs (without);
* the interval and p-value come from the method's own test (t for GBR, the
  studentised trimmed mean for Trimmed Match), so they agree;
* the per-period series spreads the incremental total over the test in
  proportion to the spend change (uniformly without a channel); the
  pre-period line is the controls plus their mean pre-period gap, a visual
  reference only (the methods do not fit a time series).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from causal.errors import ConfigError, DataError
from causal.gbr import GeoBasedRegression
from causal.inference import EffectInference
from causal.panel import Panel
from causal.trimmed_match import TrimmedMatch
from experiments.readout_result import Readout

GEO_LEVEL = ("gbr", "trimmed_match")


def read_pairs(path: str) -> list[tuple[str, str]]:
    """A CSV of matched pairs: columns ``treated,control`` (one pair a row)."""
    try:
        frame = pd.read_csv(path, dtype=str)
    except FileNotFoundError as exc:
        raise DataError(f"{path}: no such pairs file") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV of pairs ({exc})") from exc
    missing = [c for c in ("treated", "control") if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: pairs file has no column '{missing[0]}' (it needs columns treated,control)"
        )
    for col in ("treated", "control"):
        if frame[col].isna().any():
            raise DataError(
                f"{path}: row {int(frame[col].isna().to_numpy().argmax()) + 2} has no '{col}' geo"
            )
    return [(t.strip(), c.strip()) for t, c in zip(frame["treated"], frame["control"])]


def _check_pairs(panel: Panel, pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    pairs = [(str(t), str(c)) for t, c in pairs]
    if not pairs:
        raise DataError("no pairs given")
    seen: dict[str, int] = {}
    for k, (t, c) in enumerate(pairs):
        panel.check_geos([t, c], f"pair {k + 1}")
        for g in (t, c):
            if g in seen:
                raise DataError(
                    f"geo '{g}' is in pair {seen[g] + 1} and pair {k + 1}; pairs must be disjoint"
                )
            seen[g] = k
    return pairs


def read_out_geo_level(
    panel: Panel,
    test_period: Sequence,
    *,
    method: str,
    pre_period: tuple[pd.Timestamp, pd.Timestamp],
    treated: Sequence[str] | None = None,
    control: Sequence[str] | None = None,
    pairs: Sequence[tuple[str, str]] | None = None,
    confidence: float = 0.9,
    channel: str | None = None,
    seed: int = 0,
    max_trim_rate: float = 0.25,
) -> Readout:
    """Read out a test with GBR or Trimmed Match (see the module docstring).

    Parameters
    ----------
    panel : Panel
    test_period : (Timestamp, Timestamp)
        Checked dates, inclusive.
    method : {"gbr", "trimmed_match"}
    pre_period : (Timestamp, Timestamp)
        GBR's pre-period response; Trimmed Match only draws the reference line with it.
    treated, control : sequence of str, optional
        GBR's geos (default control: every untreated geo); with ``pairs`` they
        are the pairs' geos.
    pairs : sequence of (treated, control), optional
        Matched pairs; required by Trimmed Match.
    channel : str, optional
        The channel whose spend the test moved: the estimate is then an iROAS.
    max_trim_rate : float, default=0.25
        Trimmed Match's largest trim rate.

    Raises
    ------
    DataError
        Overlapping or unknown pairs, too few geos or pairs, no spend change.
    ConfigError
        An unknown method, Trimmed Match without pairs.
    """
    if method not in GEO_LEVEL:
        raise ConfigError(
            f"unknown geo-level method '{method}' (use one of: {', '.join(GEO_LEVEL)})"
        )
    start, end = test_period
    pre_start, pre_end = pre_period
    if pairs is not None:
        pairs = _check_pairs(panel, pairs)
        treated, control = [t for t, _ in pairs], [c for _, c in pairs]
    elif method == "trimmed_match":
        raise ConfigError(
            "trimmed_match reads out matched pairs: give them (--pairs FILE, a CSV treated,control)"
        )
    treated = panel.check_geos(list(treated or []), "treated")
    if not treated:
        raise DataError("no treated geos given")
    if control is None:
        control = [g for g in panel.geos if g not in set(treated)]
    control = panel.check_geos(list(control), "control")
    both = [g for g in control if g in treated]
    if both:
        raise DataError(f"geo '{both[0]}' is given both as treated and as control")

    wide = panel.wide()
    pre_mask = (wide.index >= pre_start) & (wide.index <= pre_end)
    post_mask = (wide.index >= start) & (wide.index <= end)
    T1 = int(post_mask.sum())
    Yt_pre, Yt_post = (
        wide.loc[pre_mask, treated].to_numpy(),
        wide.loc[post_mask, treated].to_numpy(),
    )
    Yc_pre, Yc_post = (
        wide.loc[pre_mask, control].to_numpy(),
        wide.loc[post_mask, control].to_numpy(),
    )
    if channel is not None:
        sw = panel.wide(panel.spend_column(channel))
        St_pre, St_post = (
            sw.loc[pre_mask, treated].to_numpy(),
            sw.loc[post_mask, treated].to_numpy(),
        )
        Sc_pre, Sc_post = (
            sw.loc[pre_mask, control].to_numpy(),
            sw.loc[post_mask, control].to_numpy(),
        )
    notes: list[str] = []

    if method == "trimmed_match":
        dR = Yt_post.sum(axis=0) - Yc_post.sum(axis=0)
        if channel is not None:
            dS_series = St_post - Sc_post  # (T1, pairs)
            dS = dS_series.sum(axis=0)
            what = "iROAS"
        else:
            dS_series, dS = np.full((T1, len(treated)), 1.0 / T1), np.ones(len(treated))
            what = "effect per pair"
        tm = TrimmedMatch(max_trim_rate=max_trim_rate).fit(dR, dS)
        est, (lo_e, hi_e), p = tm.estimate_, tm.conf_int(confidence), tm.p_value()
        total_dS = float(dS.sum())
        share = dS_series.sum(axis=1)
        method_text = (
            f"Trimmed Match (Chen & Au 2022) on {tm.n_pairs_} pairs, trim rate {tm.trim_rate_:.3f} "
            f"chosen by the paper's rule, {what} {est:.4g} (se {tm.std_error_:.3g}); interval and "
            "p-value from the studentised trimmed mean"
        )
        if tm.trimmed_:
            notes.append(
                "Trimmed pairs: "
                + ", ".join(f"{treated[i]}/{control[i]}" for i in tm.trimmed_)
                + "."
            )
        notes.append(
            "Trimmed Match compares the pairs' test-period responses only (as published): pairs "
            "must be matched on the pre-period."
        )
    else:
        y1 = np.r_[Yt_post.sum(axis=0), Yc_post.sum(axis=0)]
        y0 = np.r_[Yt_pre.sum(axis=0), Yc_pre.sum(axis=0)]
        if channel is not None:
            # The spend change of every geo against its own pre-period rate (Vaver & Koehler's delta).
            rate_t, rate_c = St_pre.mean(axis=0), Sc_pre.mean(axis=0)
            d = np.r_[St_post.sum(axis=0) - rate_t * T1, Sc_post.sum(axis=0) - rate_c * T1]
            total_dS = float(d[: len(treated)].sum())
            share = (St_post - rate_t).sum(axis=1)
            what = "iROAS"
        else:
            d = np.r_[np.ones(len(treated)), np.zeros(len(control))]
            total_dS, share = float(len(treated)), np.full(T1, len(treated) / T1)
            what = "effect per treated geo"
        gbr = GeoBasedRegression().fit(y1, y0, d)
        est, (lo_e, hi_e), p = gbr.estimate_, gbr.conf_int(confidence), gbr.p_value()
        method_text = (
            f"GBR (Vaver & Koehler 2011), weighted regression over {gbr.n_geos_} geos, {what} "
            f"{est:.4g} (se {gbr.bse_[2]:.3g}); Student t with {gbr.df_} df"
        )

    if channel is not None and abs(total_dS) <= 1e-12:
        raise DataError(
            f"the test did not change the spend of '{channel}' in the treated geos: no iROAS to estimate"
        )
    n1 = len(treated)
    incremental = est * total_dS
    lo, hi = sorted((lo_e * total_dS, hi_e * total_dS))
    # The incremental total over the test periods, in proportion to the spend change (per period).
    weights = share / share.sum() if share.sum() != 0 else np.full(T1, 1.0 / T1)
    inc_t = incremental * weights
    y_pre, y_post = Yt_pre.mean(axis=1), Yt_post.mean(axis=1)
    cf_post = y_post - inc_t / n1
    gap = float((Yt_pre.sum(axis=1) - Yc_pre.sum(axis=1) * n1 / len(control)).mean())
    cf_pre = (Yc_pre.sum(axis=1) * n1 / len(control) + gap) / n1
    half = 0.5 * (hi - lo) * weights / n1
    inf = EffectInference(
        incremental / n1, (lo / n1, hi / n1), p, cf_post - half, cf_post + half, method_text
    )
    spend = None
    if channel is not None:
        observed = float(St_post.sum())
        spend = {
            "observed": observed,
            "counterfactual": observed - total_dS,
            "counterfactual_series": St_post.sum(axis=1) - share,
            "observed_series": St_post.sum(axis=1),
            "method": f"{method}'s spend change",
            "moved": True,
        }
    return Readout.build(
        panel=panel,
        counterfactual_pre=cf_pre,
        counterfactual_post=cf_post,
        estimator_name=method,
        confidence=float(confidence),
        treated=treated,
        control=list(control),
        pre_period=(pre_start, pre_end),
        test_period=(start, end),
        pre_dates=wide.index[pre_mask],
        post_dates=wide.index[post_mask],
        y_pre=y_pre,
        y_post=y_post,
        inference=inf,
        placebo={},
        channel=channel,
        spend=spend,
        seed=seed,
        extra_notes=notes
        + [
            "Pre-period line: the controls scaled to the treated count plus their mean "
            "pre-period gap (a reference; the method fits no time series)."
        ],
        tests=[{"test": method, "p_value": float(p), "method": method_text}],
        inference_choice=method,
    )
