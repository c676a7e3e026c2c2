"""Independent checks for the allocation tests: random concave instances and a KKT water-filling solver.

The water-filling solver uses no cvxpy: for a separable concave objective with
box bounds and one budget, the KKT conditions say every line not at a bound
has the same marginal return ``lam``; each line's spend is the clipped inverse
of its marginal curve at ``lam``, and ``lam`` is found by bisection so the
spend adds up to the budget.
"""

from __future__ import annotations

import numpy as np

from allocation.curves import CurveSet


def random_curves(
    rng: np.random.Generator, n: int, *, markets: int = 1, bounds: bool = True
) -> CurveSet:
    lines = []
    for i in range(n):
        form = rng.choice(["exp", "log", "hill", "power", "hill1"])
        beta = float(rng.uniform(50, 500))
        if form == "exp":
            resp = {"form": "exp", "beta": beta, "scale": float(rng.uniform(500, 5000))}
        elif form == "log":
            resp = {"form": "log", "beta": beta / 5, "scale": float(rng.uniform(200, 3000))}
        elif form == "hill":
            resp = {
                "form": "hill",
                "beta": beta,
                "half_saturation": float(rng.uniform(500, 5000)),
                "shape": float(rng.uniform(0.4, 1.0)),
            }
        elif form == "hill1":
            resp = {
                "form": "hill",
                "beta": beta,
                "half_saturation": float(rng.uniform(500, 5000)),
                "shape": 1.0,
            }
        else:
            resp = {
                "form": "power",
                "beta": float(rng.uniform(0.5, 3)),
                "exponent": float(rng.uniform(0.3, 0.9)),
            }
        cur = float(rng.uniform(200, 3000))
        line = {
            "name": f"ch{i}",
            "market": f"M{i % markets}",
            "response": resp,
            "current_spend": cur,
        }
        if bounds and rng.random() < 0.3:
            line["min_spend"] = float(rng.uniform(100, 600))
        if bounds and rng.random() < 0.3:
            line["max_spend"] = float(rng.uniform(800, 2500))
        lines.append(line)
    return CurveSet.from_dict({"channels": lines})


def _spend_at(curves: CurveSet, lam: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per line: the spend in [lo, hi] where the marginal return equals ``lam`` (clipped)."""
    out = np.empty(len(curves))
    for i, c in enumerate(curves):
        a, b = lo[i], hi[i]
        if c.marginal(a) <= lam:
            out[i] = a
            continue
        if c.marginal(b) >= lam:
            out[i] = b
            continue
        for _ in range(64):  # bisection on the (decreasing) marginal: 2^-64 of the range
            m = 0.5 * (a + b)
            if c.marginal(m) > lam:
                a = m
            else:
                b = m
        out[i] = 0.5 * (a + b)
    return out


def water_fill(
    curves: CurveSet, budget: float, lo: np.ndarray, hi: np.ndarray, *, eq: bool = False
) -> np.ndarray:
    """Optimal spend of ``max sum f_i(x_i)`` s.t. ``sum x <= budget`` (or ``==``), ``lo <= x <= hi``."""
    hi = np.where(np.isfinite(hi), hi, budget)
    if not eq and _spend_at(curves, 0.0, lo, hi).sum() <= budget:
        return _spend_at(curves, 0.0, lo, hi)
    lam_lo, lam_hi = 0.0, 1.0
    while _spend_at(curves, lam_hi, lo, hi).sum() > budget:
        lam_hi *= 2
    for _ in range(80):
        lam = 0.5 * (lam_lo + lam_hi)
        if _spend_at(curves, lam, lo, hi).sum() > budget:
            lam_lo = lam
        else:
            lam_hi = lam
    return _spend_at(curves, 0.5 * (lam_lo + lam_hi), lo, hi)


def spend_at_marginal(curves: CurveSet, lam: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return _spend_at(curves, lam, lo, np.where(np.isfinite(hi), hi, 1e9))


def test_water_fill_splits_equal_curves_equally():
    curves = CurveSet.from_dict(
        {
            "channels": [
                {"name": n, "response": {"form": "log", "beta": 10, "scale": 100}} for n in "abc"
            ]
        }
    )
    x = water_fill(curves, 3000.0, np.zeros(3), np.full(3, np.inf))
    np.testing.assert_allclose(x, 1000.0, rtol=1e-9)
