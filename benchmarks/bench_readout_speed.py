"""Time a full ``sc`` readout with inference on GeoLift's data against pysyncon, same process, same data.

The readout: load the panel, fit GeoLift's synthetic control (demeaned,
simplex weights) for Chicago + Portland, conformal p-value and interval on the
average effect, pointwise band, placebo-in-space (38 donors) and
placebo-in-time checks.

The alternative: pysyncon (``pip install pysyncon``), another Python
implementation of synthetic control with Chernozhukov-Wüthrich-Zhu conformal
intervals: ``Synth.fit`` with an identity V on the same demeaned pre-period
outcomes (so the weights are GeoLift's), then ``Synth.confidence_interval``
for the 15 test days (its conformal intervals are pointwise; no placebos).
Without pysyncon it falls back to a plain scipy SLSQP synthetic control
(the fit only), and says so.

``--cpu`` reports process CPU seconds (``time.process_time``: robust to other
jobs sharing the machine) of the full readouts of ``sc`` and ``bsts`` instead,
with the ratio between them, and skips pysyncon.

Run: python benchmarks/bench_readout_speed.py [--repeat 5] [--cpu]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from causal.panel import load_panel
from experiments.readout import read_out

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "geolift" / "GeoLift_Test.csv"
TREATED = ["chicago", "portland"]
TEST = ("2021-04-01", "2021-04-15")


def ours() -> float:
    panel = load_panel(DATA, y="Y", geo_col="location")
    r = read_out(panel, TREATED, TEST, estimator="sc")
    return r.incremental


def _demeaned():
    panel = load_panel(DATA, y="Y", geo_col="location")
    W = panel.wide()
    pre = W.index < TEST[0]
    y = W[TREATED].mean(axis=1)
    X = W[[g for g in panel.geos if g not in TREATED]]
    y_c, X_c = (y - y[pre].mean()).rename("treated"), X - X[pre].mean()
    days = np.arange(len(W))
    X_c.index = y_c.index = days
    return X_c, y_c, days[pre], days[~pre]


def pysyncon_readout() -> float:
    from pysyncon import Synth

    Z0, Z1, pre, post = _demeaned()
    synth = Synth()
    V = np.ones(len(pre))  # pysyncon takes the diagonal of V
    synth.fit(X0=Z0.loc[pre], X1=Z1.loc[pre], Z0=Z0.loc[pre], Z1=Z1.loc[pre], custom_V=V)
    synth.confidence_interval(
        alpha=0.1,
        time_periods=list(post),
        tol=0.1,
        pre_periods=list(pre),
        X0=Z0.loc[pre],
        X1=Z1.loc[pre],
        Z0=Z0,
        Z1=Z1,
        custom_V=V,
        verbose=False,
    )
    w = synth.W
    return float((Z1.loc[post] - Z0.loc[post] @ w).sum() * len(TREATED))


def slsqp_fit() -> float:
    from scipy.optimize import minimize

    Z0, Z1, pre, post = _demeaned()
    A, b = Z0.loc[pre].to_numpy(), Z1.loc[pre].to_numpy()
    J = A.shape[1]
    res = minimize(
        lambda w: np.sum((A @ w - b) ** 2),
        np.full(J, 1 / J),
        method="SLSQP",
        bounds=[(0, 1)] * J,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
        options={"maxiter": 1000, "ftol": 1e-12},
    )
    return float((Z1.loc[post] - Z0.loc[post].to_numpy() @ res.x).sum() * len(TREATED))


def _time(fn, repeat: int, clock=time.perf_counter) -> tuple[float, float]:
    fn()  # warm-up (imports, caches)
    times = []
    for _ in range(repeat):
        t0 = clock()
        value = fn()
        times.append(clock() - t0)
    return float(np.median(times)), value


def bsts_readout() -> float:
    panel = load_panel(DATA, y="Y", geo_col="location")
    return read_out(panel, TREATED, TEST, estimator="bsts").incremental


def cpu(repeat: int) -> None:
    """Process CPU seconds of the full sc and bsts readouts (placebo checks included), median of ``repeat``."""
    sc_s, _ = _time(ours, repeat, time.process_time)
    bsts_s, _ = _time(bsts_readout, max(1, repeat // 2), time.process_time)
    print(f"liftlab read_out(sc), full readout with inference: {sc_s:.3f} CPU s (target 0.25)")
    print(
        f"liftlab read_out(bsts), full readout with placebo checks: {bsts_s:.3f} CPU s (target 5)"
    )
    print(f"ratio bsts / sc: {bsts_s / sc_s:.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--cpu", action="store_true", help="CPU seconds of the sc and bsts readouts only"
    )
    args = parser.parse_args()
    if args.cpu:
        cpu(args.repeat)
        return
    ours_s, ours_inc = _time(ours, args.repeat)
    try:
        import pysyncon  # noqa: F401

        name, fn = "pysyncon Synth.fit + conformal confidence_interval", pysyncon_readout
    except ImportError:
        print(
            "pysyncon is not installed: comparing with a plain scipy SLSQP synthetic control (fit only)"
        )
        name, fn = "scipy SLSQP synthetic control (fit only)", slsqp_fit
    other_s, other_inc = _time(fn, args.repeat)
    rows = pd.DataFrame(
        {
            "implementation": ["liftlab read_out(sc), full readout with inference", name],
            "median seconds": [ours_s, other_s],
            "incremental": [ours_inc, other_inc],
        }
    )
    print(rows.to_string(index=False))
    print(
        f"speed ratio (other / liftlab): {other_s / ours_s:.1f}x; liftlab full readout {ours_s:.3f} s "
        f"({'under' if ours_s < 2 else 'OVER'} the 2 s target)"
    )


if __name__ == "__main__":
    main()
