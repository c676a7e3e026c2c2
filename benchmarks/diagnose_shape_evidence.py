"""What chooses a channel's half-saturation in the structural model: the data or the prior? (issue 14)

On the daily loop's day-0 panel of a backtest world (history and the battery's five lifts), fits the
structural model without lifts with each coefficient prior (``prior_on``) and prints, for one channel,
the evidence for each half-saturation multiple of the grid (log-sum over the grid's decays and
exponents, relative to the best multiple, every other channel at the mode's shape):

* ``least squares``: the profile log likelihood of the model's own signups design (the same
  residualised columns, coefficients per cluster, no prior), ``-RSS / (2 sigma^2)``;
* ``marginal likelihood``: the model's conditional log marginal likelihood over that channel's shapes
  (signups and queries equations, the prior included): what weighs its draws.

Then, at the mode's shapes, the least-squares coefficient of the channel in each cluster's signups
equation (standard error clustered by market), with and without the observed queries' columns, over
the world's coefficient per unit size in that cluster (the shapes differ, so the ratios compare clusters, not levels): where one cluster's
panel alone puts the channel far above the others.

Figures: docs/backtest.md, "Why programmatic came out straight" and "Session 11".

    PYTHONPATH=$PWD:$PWD/benchmarks python benchmarks/diagnose_shape_evidence.py --seed 0 [--channel programmatic]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from backtest_day0_returns import day0_world  # the same day-0 world
from backtest_world import add_world_options

from allocation.backtest_structural_fit import fit_structural
from allocation.structural_inputs import PRIOR_ON
from allocation.structural_result import draw_multiples
from causal.world_params import CLUSTERS


def by_multiple(model, channel: str, values: np.ndarray) -> dict[float, float]:
    """Log-sum of ``values`` (one per grid candidate) per half-saturation multiple, best = 0."""
    mult = draw_multiples(model.grid_[channel], model.half_saturations, np.arange(len(values)))
    out = {
        float(m): float(np.logaddexp.reduce(values[np.isclose(mult, m)]))
        for m in model.half_saturations
    }
    top = max(out.values())
    return {m: v - top for m, v in out.items()}


def least_squares(model, k: int) -> np.ndarray:
    """Profile log likelihood of the signups design for each candidate of channel ``k``."""
    X, nb, n = model._X.astype(float), model._nb, model._n_cand
    y = X[:, 0]
    rows = model._row_clusters()
    rss = np.empty(n)
    for j in range(n):
        cols = [nb + kk * n + (j if kk == k else model.mode_[kk]) for kk in range(model._K)]
        D = X[:, list(range(1, nb)) + cols]
        D = np.column_stack([np.where((rows == c)[:, None], D, 0.0) for c in range(model._C)])
        coef, *_ = np.linalg.lstsq(D, y, rcond=None)
        rss[j] = float(((y - D @ coef) ** 2).sum())
    return -(rss - rss.min()) / (2 * rss.min() / len(y))


def cluster_coefficients(model, k: int, queries: bool = True) -> dict[str, tuple[float, float]]:
    """Least-squares coefficient of channel ``k`` in each cluster's signups equation at the mode's
    shapes (the queries' columns in the design or not), with its standard error clustered by market
    (each market's whole series one group: its residuals are autocorrelated)."""
    X, nb = model._X.astype(float), model._nb
    cols = model._cols(model.mode_)
    design = np.column_stack(([X[:, 1:nb]] if queries else []) + [X[:, cols]])
    rows = model._row_clusters()
    market = np.tile(np.arange(model._G), model._T)  # rows are date-major
    j = design.shape[1] - model._K + k
    out = {}
    for c, name in enumerate(model.clusters_):
        D, y = design[rows == c], X[rows == c, 0]
        coef, *_ = np.linalg.lstsq(D, y, rcond=None)
        _, group = np.unique(market[rows == c], return_inverse=True)
        scores = np.zeros((group.max() + 1, D.shape[1]))
        np.add.at(scores, group, D * (y - D @ coef)[:, None])
        bread = np.linalg.pinv(D.T @ D)
        out[name] = (float(coef[j]), float(np.sqrt((bread @ scores.T @ scores @ bread)[j, j])))
    return out


def marginal_likelihood(model, k: int) -> np.ndarray:
    """The model's conditional log marginal likelihood over channel ``k``'s candidates at the mode."""
    vals = np.empty(model._n_cand)
    for j in range(model._n_cand):
        combo = model.mode_.copy()
        combo[k] = j
        vals[j] = model._posterior(combo, [])[2]
    return vals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_world_options(ap)
    ap.add_argument("--channel", default="programmatic")
    args = ap.parse_args()
    _, setting, frame = day0_world(args)
    print(f"seed {args.seed}, {args.channel}: evidence per half-saturation multiple (best = 0)")
    for prior_on in PRIOR_ON:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = fit_structural(
                setting, frame, 0, [], n_draws=60, options={"prior_on": prior_on}
            )
        k = model.channels_.index(args.channel)
        rows = {
            "least squares": least_squares(model, k),
            "marginal likelihood": marginal_likelihood(model, k),
        }
        for name, values in rows.items():
            ev = by_multiple(model, args.channel, values)
            shown = "  ".join(f"{m:g}x {v:+.2f}" for m, v in ev.items())
            print(f"   prior on the {prior_on:15s} {name:20s} {shown}")
    world = setting.world
    beta = {
        name: float(world.params[args.channel]["beta"][np.flatnonzero(world.cluster_of == c)[0]])
        for c, name in enumerate(CLUSTERS)
    }
    print(
        f"least-squares coefficient per cluster at the mode's shapes / the world's ({args.channel}):"
    )
    for queries in (True, False):
        coef = cluster_coefficients(model, k, queries)
        shown = "  ".join(
            f"{cl} {coef[cl][0]:.1f} (se {coef[cl][1]:.1f}) / {beta[cl]:.1f}"
            for cl in CLUSTERS
            if cl in coef
        )
        print(f"   {'with' if queries else 'without'} the queries' columns: {shown}")


if __name__ == "__main__":
    main()
