"""Trimmed Match and GBR: parity with Google's trimmed_match unit tests, and coverage by simulation."""

from __future__ import annotations

import numpy as np
import pytest

from causal.errors import DataError
from causal.gbr import GeoBasedRegression
from causal.trimmed_match import TrimmedMatch

# google/trimmed_match, trimmed_match/estimator_test.py (Apache-2.0): inputs and expected reports.
RESPONSE = [1.0, 10.0, 3.0, 8.0]
SPEND = [1.0, 5.0, 2.0, 5.0]


@pytest.mark.parametrize(
    "trim_rate, estimate, se, rate, ci, trimmed",
    [
        (0.0, 22 / 13, 0.138, 0.0, (1.250, 1.905), []),
        (0.20, 11 / 7, 0.041, 0.20, (-29.374, 1.619), [0, 1]),
        (None, 11 / 7, 0.041, 0.25, (-29.374, 1.619), [0, 1]),
    ],
)
def test_parity_with_trimmed_match_unit_tests(trim_rate, estimate, se, rate, ci, trimmed):
    tm = TrimmedMatch(trim_rate=trim_rate).fit(RESPONSE, SPEND)
    assert tm.estimate_ == pytest.approx(estimate, abs=5e-4)
    assert tm.std_error_ == pytest.approx(se, abs=5e-4)
    assert tm.trim_rate_ == pytest.approx(rate)
    assert tm.conf_int(0.9) == pytest.approx(ci, abs=5e-4)
    assert sorted(tm.trimmed_) == trimmed
    eps = np.asarray(RESPONSE) - np.asarray(SPEND) * tm.estimate_
    assert tm.epsilons_ == pytest.approx(eps)


def test_ties_and_bad_input():
    assert TrimmedMatch().fit([1, 2, 3, 4, 5], [1, 1, 1, 1, 1]).estimate_ == pytest.approx(3.0)
    assert TrimmedMatch().fit([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]).estimate_ == pytest.approx(1.0)
    assert TrimmedMatch().fit([1, 1, 1, 1, 1], [1, 1, 1, 1, 1]).estimate_ == pytest.approx(1.0)
    with pytest.raises(DataError, match="did not move spend"):
        TrimmedMatch().fit([1, 2, 3, 4, 5], [0, 0, 0, 0, 1e-15])
    with pytest.raises(DataError, match="at least 3 pairs"):
        TrimmedMatch().fit([1, 2], [1, 2])


def test_p_value_and_interval_agree():
    rng = np.random.default_rng(3)
    for _ in range(20):
        S = rng.uniform(1, 10, 15)
        R = 0.3 * S + rng.standard_t(3, 15)
        tm = TrimmedMatch().fit(R, S)
        lo, hi = tm.conf_int(0.9)
        assert lo <= tm.estimate_ <= hi
        # zero outside the interval <=> p below 0.1 (the same studentised trimmed-mean test)
        if hi - lo < 1e6 * tm.std_error_:
            assert (tm.p_value() < 0.1) == (lo > 0 or hi < 0)


@pytest.mark.parametrize("df", [3, 30])
def test_trimmed_match_coverage(df):
    """90% intervals over 300 simulated paired experiments with heavy- and light-tailed pair noise."""
    rng = np.random.default_rng(df)
    theta, hits = 2.0, 0
    reps = 300
    for _ in range(reps):
        S = rng.uniform(10, 100, 30)
        R = theta * S + 20 * rng.standard_t(df, 30)
        lo, hi = TrimmedMatch().fit(R, S).conf_int(0.9)
        hits += lo <= theta <= hi
    assert 0.84 <= hits / reps <= 0.96


def test_gbr_coverage():
    rng = np.random.default_rng(0)
    hits, reps = 0, 300
    for _ in range(reps):
        y0 = rng.uniform(100, 2000, 40)
        d = np.r_[rng.uniform(10, 50, 20), np.zeros(20)]
        y1 = 10 + 1.05 * y0 + 1.5 * d + rng.normal(0, 1, 40) * np.sqrt(y0)
        lo, hi = GeoBasedRegression().fit(y1, y0, d).conf_int(0.9)
        hits += lo <= 1.5 <= hi
    assert 0.85 <= hits / reps <= 0.95
