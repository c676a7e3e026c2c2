"""The structural model's weekly fit in the closed loop, and its line curves for the planner.

Used by :class:`allocation.backtest_structural.StructuralLoop` and by the response-model loop that
averages both model classes (:class:`allocation.backtest_policies.DailyLoop`, ``average_models``);
it imports neither, so neither loop module imports the other.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import pandas as pd

from allocation.backtest_setting import (
    Setting,
    cluster_mapping,
    fit_hill_curve,
    panel_before,
    spend_grid,
)
from allocation.calibration_lifts import Lift
from allocation.structural import MediatorWarning, StructuralModel
from causal import response as R
from causal.errors import ConfigError
from causal.graph import default_graph, joint_controls, normalise


def fit_structural(
    setting: Setting,
    frame: pd.DataFrame,
    day: int,
    lifts: Sequence[Lift],
    *,
    n_draws: int,
    options: dict | None = None,
) -> StructuralModel:
    """The structural model on the panel before ``day`` and every lift read out by then
    (``options``: further :class:`~allocation.structural.StructuralModel` parameters)."""
    panel = panel_before(setting, frame, day)
    graph = normalise(default_graph(panel.channels, panel.y), panel.channels, panel.y)
    fitted_to = panel.dates[-1].date().isoformat()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MediatorWarning)
        return StructuralModel(
            controls=joint_controls(graph, panel.channels, panel.covariates),
            clusters=cluster_mapping(setting.world),
            graph=graph,
            n_draws=n_draws,
            seed=setting.seed,
            **(options or {}),
        ).fit(panel, [lf for lf in lifts if lf.end <= fitted_to])


def expected_cluster_curves(curves: dict, setting: Setting) -> dict:
    """Each line's expected response over the posterior draws, fitted by one Hill curve per line.

    Draw ``j`` of a cluster's curve is the Hill curve with the markets' summed draw-``j``
    coefficients and half-saturations and the draw's shape (exact for spend spread by size, as in
    :func:`cluster_curves`); the draws' shapes differ, so their mean response is no single Hill
    curve and is fitted by one (:func:`allocation.backtest_setting.fit_hill_curve`) for the planner.
    """
    acc = cluster_draws(curves)
    out = []
    for i, key in enumerate(setting.lines):
        xs = spend_grid(setting, i)
        draws = {k: v[:, None] for k, v in acc[key].items()}
        ys = R.value("hill", xs[None, :], draws).mean(axis=0)
        out.append({"name": key[0], "market": key[1], "response": fit_hill_curve(xs, ys)})
    return {"channels": out}


def cluster_draws(curves: dict) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """Each (channel, cluster)'s Hill parameters per posterior draw: its markets' summed draw-``j``
    coefficients (negative sums held at zero) and half-saturations, and the draw's shape."""
    acc: dict[tuple[str, str], dict] = {}
    for c in curves["channels"]:
        d = c["response_draws"]
        a = acc.setdefault(
            (c["name"], c["cluster"]),
            {"beta": 0.0, "half_saturation": 0.0, "shape": np.asarray(d["shape"], float)},
        )
        a["beta"] = a["beta"] + np.asarray(d["beta"], float)
        a["half_saturation"] = a["half_saturation"] + np.asarray(d["half_saturation"], float)
    for a in acc.values():
        a["beta"] = np.maximum(a["beta"], 0.0)
    return acc


def cluster_curves(curves: dict) -> dict:
    """Per-market structural curves (curves.json dict) summed into one Hill curve per channel x cluster.

    Exact for spend spread over the cluster's markets by size: each market's curve is ``b s`` times
    the Hill shape at ``x / (k s)``, so the cluster's is ``b S`` times it at ``X / (k S)``, ``S`` the
    summed sizes.
    """
    acc: dict[tuple[str, str], dict] = defaultdict(lambda: {"beta": 0.0, "half_saturation": 0.0})
    for c in curves["channels"]:
        r = c["response"]
        if r["form"] != "hill":
            raise ConfigError(f"cluster_curves: line {c['name']}/{c['market']} is not a Hill curve")
        a = acc[(c["name"], c["cluster"])]
        a["beta"] += float(r["beta"])
        a["half_saturation"] += float(r["half_saturation"])
        if a.setdefault("shape", float(r["shape"])) != float(r["shape"]):
            raise ConfigError(f"cluster_curves: {c['name']} has two Hill shapes in {c['cluster']}")
    return {
        "channels": [
            {"name": ch, "market": cl, "response": {"form": "hill", **a}}
            for (ch, cl), a in acc.items()
        ]
    }
