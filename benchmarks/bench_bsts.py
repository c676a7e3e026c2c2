"""BSTS engine comparison against R CausalImpact's fixtures, with timings.

Runs, on each R fixture (``../shared/data/causalimpact_r/``), the chosen engine
(``causal.bsts``, on bsts-causalimpact's Gibbs sampler) and the alternative
that was evaluated (statsmodels ``UnobservedComponents`` at its maximum
likelihood estimate, posterior-predictive-like draws from its simulation of the
test period), prints each one's point effect and 95% interval ends against R's
with the relative difference, and the time of each in the same process with
their ratio.

Usage::

    .venv/bin/python benchmarks/bench_bsts.py
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np

from causal.bsts import BayesianStructuralTimeSeries, causalimpact_summary

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "causalimpact_r"
SCENARIOS = ["basic", "covariates", "no_effect", "seasonal", "strong_effect"]
KEYS = ("point_effect_mean", "ci_lower", "ci_upper")


def load(name: str):
    d = json.loads((DATA / f"r_reference_{name}.json").read_text())
    y = np.asarray(d["data"]["y"], float)
    X = (
        np.column_stack([np.asarray(v, float) for v in d["data"]["x"].values()])
        if d["data"]["x"]
        else None
    )
    return d, y, X, d["model_args"].get("nseasons")


def ours(y, X, n0, nseasons):
    est = BayesianStructuralTimeSeries(nseasons=nseasons).fit_series(
        y[:n0], len(y) - n0, None if X is None else X[:n0], None if X is None else X[n0:]
    )
    return causalimpact_summary(y[n0:], est.predictive_draws_, 0.05)


def statsmodels_mle(y, X, n0, nseasons, draws=20000):
    from statsmodels.tsa.statespace.structural import UnobservedComponents

    mu, sd = y[:n0].mean(), y[:n0].std(ddof=1)
    z = (y - mu) / sd
    kw = {"seasonal": nseasons} if nseasons else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = UnobservedComponents(z[:n0], "llevel", exog=None if X is None else X[:n0], **kw).fit(
            disp=False
        )
    sims = res.simulate(
        len(y) - n0,
        repetitions=draws,
        anchor="end",
        exog=None if X is None else X[n0:],
        rng=np.random.default_rng(0),
    )
    sims = np.asarray(sims).reshape(len(y) - n0, -1).T * sd + mu
    return causalimpact_summary(y[n0:], sims, 0.05)


def main() -> None:
    print("| scenario | engine | " + " | ".join(f"{k} (R) / diff" for k in KEYS) + " | seconds |")
    print("| --- " * (3 + len(KEYS)) + "|")
    totals = {"bsts-causalimpact": 0.0, "statsmodels MLE": 0.0}
    worst = {"bsts-causalimpact": 0.0, "statsmodels MLE": 0.0}
    for name in SCENARIOS:
        d, y, X, ns = load(name)
        r = d["r_output"]
        for engine, fn in (("bsts-causalimpact", ours), ("statsmodels MLE", statsmodels_mle)):
            t = time.perf_counter()
            s = fn(y, X, d["n_pre"], ns)
            dt = time.perf_counter() - t
            totals[engine] += dt
            diffs = [s[k] / r[k] - 1 for k in KEYS]
            worst[engine] = max(worst[engine], max(abs(x) for x in diffs))
            cells = " | ".join(
                f"{s[k]:.4f} ({r[k]:.4f}) / {100 * x:+.1f}%" for k, x in zip(KEYS, diffs)
            )
            print(f"| {name} | {engine} | {cells} | {dt:.2f} |")
    print()
    for engine in totals:
        print(
            f"{engine}: worst relative difference {100 * worst[engine]:.1f}%, total {totals[engine]:.2f} s"
        )
    print(
        f"time ratio bsts-causalimpact ({BayesianStructuralTimeSeries().niter} draws) / statsmodels MLE (20000 simulations): "
        f"{totals['bsts-causalimpact'] / totals['statsmodels MLE']:.2f}"
    )


if __name__ == "__main__":
    main()
