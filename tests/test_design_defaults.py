"""Design settings that fit the history (days and weeks), held-out claims with their SEs, and the prescreen."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from causal.errors import ConfigError
from causal.panel import load_panel
from causal.world import World
from experiments.design import design_experiment
from experiments.design_defaults import MIN_WINDOWS, choose_settings
from experiments.design_screen import screen_mde, stratified_masks

QUICK = dict(
    effect_sizes=(0, 0.1, 0.3),
    n_screen_windows=2,
    n_finalists=3,
    method="matched",
    greedy_rounds=0,
    n_null_windows=0,
)


@pytest.mark.parametrize(
    "n, period, expected",
    [
        (90, "day", [14]),
        (91, "day", [14]),
        (200, "day", [14, 21, 28]),
        (52, "week", [4, 6, 8]),
        (30, "week", [4]),
        (55, "day", [7]),
    ],
)
def test_default_lengths_fit_the_history(n, period, expected):
    s = choose_settings(n, period)
    assert s.durations == expected
    assert all(s.admissible[d] >= MIN_WINDOWS for d in s.durations)
    assert s.chosen["durations"] == "default" and str(expected[0]) in s.describe()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(durations=[21]),
            r"a test of 21 days needs at least 105 days of history \(84 to fit on\)",
        ),
        (
            dict(durations=[14], n_windows=40),
            "40 windows per design asked for, but a test of 14 days",
        ),
        (dict(durations=[0]), "positive integers"),
    ],
)
def test_requests_the_history_cannot_hold_name_the_shortfall(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        choose_settings(91, "day", **kwargs)


def test_too_short_for_any_default_names_what_it_needs():
    with pytest.raises(
        ConfigError, match=r"the panel has 40 days; the shortest default test \(7 days\) needs 44"
    ):
        choose_settings(40, "day")


@pytest.fixture(scope="module")
def weekly_panel():
    raw = World(10, 364, seed=5).panel()
    raw["date"] = pd.to_datetime(raw["date"])
    wk = raw.groupby([pd.Grouper(key="date", freq="W-SUN"), "geo"])["signups"].sum().reset_index()
    full = wk.groupby("date")["geo"].transform("size") == 10
    return load_panel(wk[full & (wk["date"] < wk["date"].max())].reset_index(drop=True))


def test_weekly_design_stores_days_and_periods(weekly_panel):
    assert weekly_panel.period_name == "week" and weekly_panel.dates.size >= 50
    r = design_experiment(weekly_panel, n_treated=(2, 2), durations=(4,), **QUICK)
    d = r.to_dict()
    assert d["period"] == "week" and d["duration_periods"] == 4 and d["duration_days"] == 28
    assert all(c["duration_days"] == 28 and c["duration_periods"] == 4 for c in d["candidates"])
    assert d["mde_by_duration"][0]["duration_days"] == 28
    assert "4 weeks" in r.summary().text


def test_claim_is_measured_on_later_windows_with_standard_errors(weekly_panel):
    r = design_experiment(weekly_panel, n_treated=(2, 2), durations=(4,), **QUICK)
    d = r.to_dict()
    assert d["held_out"] is True
    search = pd.to_datetime(d["settings"]["windows"]["4"])
    claim = pd.to_datetime(d["settings"]["claim_windows"]["4"])
    assert claim.min() > search.max()  # the claim windows chose nothing
    assert len(claim) == d["n_windows"] >= 4
    for key in ("power_se", "false_positive_rate_se", "n_effective_windows"):
        assert d[key] is not None and d[key] > 0
    assert d["false_positive_rate_se"] < 0.5 and d["n_effective_windows"] <= d["n_windows"]
    nothing = design_experiment(
        weekly_panel, n_treated=(2, 2), durations=(4,), claim_share=0, **QUICK
    ).to_dict()
    assert (
        nothing["held_out"] is False
        and nothing["settings"]["claim_windows"] == nothing["settings"]["windows"]
    )


def test_rate_se_falls_with_more_independent_windows(small_world):
    panel = load_panel(small_world[1])
    few = design_experiment(
        panel, n_treated=(2, 2), durations=(14,), n_windows=6, claim_share=0, **QUICK
    ).best
    many = design_experiment(
        panel, n_treated=(2, 2), durations=(14,), n_windows=30, claim_share=0, **QUICK
    ).best
    assert many.power.n_effective > few.power.n_effective
    assert many.power.rate_se(0.5) < few.power.rate_se(0.5)


def test_cli_default_design_runs_on_a_90_day_panel(run_cli, tmp_path):
    raw = World(8, 90, seed=2).panel()
    path = tmp_path / "panel90.csv"
    raw.to_csv(path, index=False)
    out = tmp_path / "design.json"
    code, stdout, stderr = run_cli(
        "design",
        "--data",
        str(path),
        "--out",
        str(out),
        "--treated",
        "2..2",
        "--method",
        "matched",
        "--effect-sizes",
        "0,0.1,0.3",
    )
    assert code == 0, stderr
    assert "test lengths (default): 14 days" in stdout and "left out 21 days" in stdout
    d = json.loads(out.read_text())
    assert d["duration_days"] == 14 and d["settings"]["chosen"]["chosen"]["durations"] == "default"
    code, _, stderr = run_cli("design", "--data", str(path), "--out", str(out), "--durations", "21")
    assert code == 2 and "needs at least 105 days of history" in stderr


def test_stratified_masks_respect_the_constraints():
    size = np.arange(40.0)
    m = stratified_masks(size, 500, (5, 8), include=[3], exclude=[0, 1], seed=4)
    assert m.shape[1] == 40 and len(m) == len(np.unique(m, axis=0))
    assert m[:, 3].all() and not m[:, [0, 1]].any()
    assert set(m.sum(axis=1)) <= set(range(5, 9))
    assert np.array_equal(
        m, stratified_masks(size, 500, (5, 8), include=[3], exclude=[0, 1], seed=4)
    )
    # Stratified: the 37 free geos, largest first, form strata of 10, 9, 9, 9; a set of 8 (7 free)
    # takes its share of each, 7 x (10, 9, 9, 9) / 37 rounded by largest remainders = (2, 2, 2, 1).
    free = np.array([i for i in range(40) if i not in (0, 1, 3)])
    strata = np.array_split(free[np.argsort(-size[free], kind="stable")], 4)
    top = m[m.sum(axis=1) == 8]
    assert len(top) > 10
    counts = np.stack([top[:, s].sum(axis=1) for s in strata], axis=1)
    assert (counts == [2, 2, 2, 1]).all()


def test_screen_matches_a_per_candidate_regression():
    rng = np.random.default_rng(0)
    T, G = 70, 9
    Y = 100 + rng.normal(0, 5, (T, G)).cumsum(axis=0) * 0.2 + rng.normal(0, 3, (T, G))
    masks = stratified_masks(Y.mean(axis=0), 20, (2, 3), seed=1)
    starts, d = np.array([50, 45, 40, 35]), 7
    got = screen_mde(Y, masks, starts, d, alpha=0.1, power_target=0.8, chunk=7)
    from scipy import stats

    z = stats.norm.ppf(0.95) + stats.norm.ppf(0.8)
    for i, m in enumerate(masks):
        y, x = Y[:, m].mean(axis=1), Y[:, ~m].mean(axis=1)
        errs, base = [], []
        for s in starts:
            b, a = np.polyfit(x[:s], y[:s], 1)
            errs.append(y[s : s + d].sum() - (a * d + b * x[s : s + d].sum()))
            base.append(y[s : s + d].sum())
        E = starts.max() + d
        b, a = np.polyfit(x[:E], y[:E], 1)
        r = y[:E] - a - b * x[:E]
        roll = np.convolve(r, np.ones(d), "valid")
        want = z * np.sqrt(0.5 * np.mean(np.square(errs)) + 0.5 * np.mean(roll**2)) / np.mean(base)
        assert got[i] == pytest.approx(want, rel=1e-8)
    # A treated average that is an exact line in the donors' average cannot be told from noise-free.
    Z = Y.copy()
    m0 = masks[0]
    Z[:, m0] = (5 + 2 * Z[:, ~m0].mean(axis=1))[:, None]
    assert screen_mde(Z, masks[:1], starts, d)[0] == pytest.approx(0.0, abs=1e-9)


def test_prescreen_search_recommends_a_simulated_design(small_world):
    panel = load_panel(small_world[1])
    r = design_experiment(
        panel,
        n_treated=(3, 4),
        durations=(14,),
        method="screen",
        n_prescreen=300,
        n_prescreen_keep=4,
        n_finalists=2,
        greedy_rounds=0,
        effect_sizes=(0, 0.1, 0.3),
        n_windows=8,
        n_screen_windows=2,
    )
    assert r.n_screened == 4 and 3 <= len(r.best.treated) <= 4
    with pytest.raises(ConfigError, match="n_prescreen"):
        design_experiment(panel, n_treated=(3, 4), durations=(14,), method="screen")
