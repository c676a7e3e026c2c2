"""The calibration workflow behind ``liftlab calibrate``: lifts checked, graph read, model fitted.

:func:`calibrate_curves` validates the lifts against the panel, reads and
checks the causal graph, resolves the market clusters, fits the structural
(default) or regression model on the panel and the lifts and, when asked,
runs the graph analysis (DoWhy identification, estimates and refutations)
the report shows. It returns a :class:`CalibrationRun`; it writes no file.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
from scipy import stats

from allocation.calibration import CalibrationResult, Lift, calibrate
from allocation.calibration_lifts import sign_contradiction, validate_lifts
from allocation.response_model import ResponseModel
from allocation.structural import MediatorWarning, StructuralModel, resolve_clusters
from causal.errors import ConfigError, DataError, mask_url
from causal.graph import (
    GraphAnalysis,
    analyse,
    check_identifiable,
    default_graph,
    joint_controls,
    normalise,
    read_graph,
)
from causal.jsonfile import read_json
from causal.panel import Panel, read_table
from causal.progress import progress

DEFAULT_MEDIATOR = "brand_queries"


@dataclass
class CalibrationRun:
    """What :func:`calibrate_curves` produced.

    Attributes
    ----------
    kind : {"structural", "regression"}
    model : StructuralModel or ResponseModel
        The fitted model.
    curves : dict
        The ``curves.json`` payload (INTERFACE.md).
    result : CalibrationResult or None
        The regression model's calibration (``kind == "regression"``).
    graph : networkx.DiGraph
        The causal graph used, normalised to the panel's channels.
    controls, skipped : list of str
        Covariates adjusted for, and those not (descendants of a channel, or not in the graph).
    mediator : str or None
        The demand-proxy column the structural model used.
    warnings : list of str
        Messages about the mediator the user should see.
    analysis : GraphAnalysis or None
        DoWhy identification, estimates and refutations (when asked for).
    """

    kind: str
    model: Any
    curves: dict
    panel: Panel
    lifts: list[Lift]
    graph: nx.DiGraph
    controls: list[str]
    skipped: list[str]
    result: CalibrationResult | None = None
    mediator: str | None = None
    warnings: list[str] = field(default_factory=list)
    analysis: GraphAnalysis | None = None


def registry_lifts(url: str) -> list[Lift]:
    """The confirmatory readouts of the experiment registry at ``url``, as lifts."""
    try:
        registry = importlib.import_module("experiments.registry")
    except ModuleNotFoundError as exc:
        raise ConfigError(
            "registry lifts need the experiments.registry module, which is not installed"
        ) from exc
    fn = getattr(registry, "calibration_lifts", None)
    if fn is None:
        raise ConfigError("experiments.registry has no calibration_lifts(url) yet")
    shown = mask_url(url)
    return [Lift.from_dict(d, f"{shown}#{i + 1}") for i, d in enumerate(fn(url))]


def read_clusters(path: str | None) -> dict[str, str] | None:
    """geo -> cluster from a CSV (columns geo, cluster) or a JSON object {geo: cluster}."""
    if not path:
        return None
    if str(path).lower().endswith(".json"):
        data = read_json(path, "cluster mapping")
        if not isinstance(data, dict) or not all(isinstance(v, (str, int)) for v in data.values()):
            raise DataError(f"{path}: the cluster mapping must be a JSON object {{geo: cluster}}")
        return {str(k).strip(): str(v) for k, v in data.items()}
    table = read_table(path)
    for col in ("geo", "cluster"):
        if col not in table.columns:
            raise DataError(
                f"{path}: no column '{col}' (the cluster file needs columns geo, cluster)"
            )
    empty = table["cluster"].isna() | (table["cluster"].astype(str).str.strip() == "")
    if empty.any():
        g = table.loc[empty, "geo"].iloc[0]
        raise DataError(f"{path}: geo '{g}' has an empty cluster")
    geos = table["geo"].astype(str).str.strip()
    repeated = geos[geos.duplicated()]
    if len(repeated):
        # A second row for a geo would silently win over the first (the JSON form refuses it too).
        raise DataError(f"{path}: geo '{repeated.iloc[0]}' is listed more than once")
    return dict(zip(geos, table["cluster"].astype(str)))


def experimental_slopes(result: CalibrationResult) -> dict[str, tuple[float, float, float]]:
    """Outcome per unit spend measured by the lifts, inverse-variance pooled per channel,
    with its interval at the calibration's confidence."""
    out = {}
    z = stats.norm.ppf(0.5 + result.confidence / 2)
    for ch, grp in result.lifts.groupby("channel"):
        est = grp["measured"] / grp["spend_delta"]
        sd = grp["sd"] / grp["spend_delta"].abs()
        w = 1 / sd**2
        m = float((w * est).sum() / w.sum())
        s = float(w.sum() ** -0.5)
        out[str(ch)] = (m, m - z * s, m + z * s)
    return out


def calibrate_curves(
    panel: Panel,
    lifts: Sequence[Lift] = (),
    *,
    graph: nx.DiGraph | str | None = None,
    model: str = "structural",
    clusters: dict[str, str] | None = None,
    cluster_col: str | None = None,
    mediator: str | None = None,
    allow_negative: bool = False,
    early_windows: bool = False,
    prior_on: str = "coefficient",
    shape_prior: str = "uniform",
    n_draws: int = 200,
    adstock: str = "geometric",
    forms: Sequence[str] = ("hill", "exp", "log"),
    pooling: float = 0.5,
    holdout: int | None = None,
    bias_scale: float = 1.0,
    confidence: float = 0.9,
    seed: int = 0,
    analyse_graph: bool = False,
    cluster_source: str = "the cluster mapping",
) -> CalibrationRun:
    """Fit response curves on ``panel`` and calibrate them on ``lifts``.

    Parameters
    ----------
    panel : Panel
    lifts : sequence of Lift
        Experiment readouts with a channel; each is checked against the panel first.
    graph : networkx.DiGraph or str, optional
        The causal graph, or a DOT/GML file; the default marketing graph otherwise.
    model : {"structural", "regression"}, default="structural"
        Structural: queries and signups equations along the graph (Bayesian,
        per-market lines with posterior draws); regression: the one-equation fit.
    clusters, cluster_col
        Market clusters from a geo -> cluster mapping or a panel column.
    mediator : str, optional
        Branded-query column; when named it must be usable (default ``brand_queries`` if present).
    allow_negative, early_windows, prior_on, shape_prior, n_draws
        Structural model options.
    adstock, forms, holdout
        Regression model options.
    pooling, bias_scale, confidence, seed
        Shrinkage of markets to the global curve, confounding prior, interval level, seed.
    analyse_graph : bool, default=False
        Also run the graph analysis (DoWhy) the calibration report shows.

    Returns
    -------
    CalibrationRun
    """
    lifts = list(lifts)
    steps = ["check", "fit", "graph analysis"] if analyse_graph else ["check", "fit"]
    run: CalibrationRun | None = None
    source = graph if isinstance(graph, str) else None
    for step in progress(steps, desc="calibrate", unit="step"):
        if step == "check":
            validate_lifts(lifts, panel)  # before the fit, so bad input fails in a moment
            g = read_graph(graph) if isinstance(graph, str) else graph
            g = normalise(
                g if g is not None else default_graph(panel.channels, panel.y),
                panel.channels,
                panel.y,
            )
            controls = joint_controls(g, panel.channels, panel.covariates)
            skipped = [c for c in panel.covariates if c not in controls and c != cluster_col]
            cl = resolve_clusters(panel, clusters, cluster_col, source=cluster_source)
        elif step == "fit":
            common = dict(panel=panel, lifts=lifts, graph=g, controls=controls, skipped=skipped)
            if model == "regression":
                run = _fit_regression(
                    common, cl, forms, adstock, pooling, holdout, bias_scale, confidence, seed
                )
            else:
                run = _fit_structural(
                    common, cl, mediator, source, allow_negative, pooling, bias_scale,
                    confidence, n_draws, seed, early_windows, prior_on, shape_prior,
                )  # fmt: skip
            run.curves["fit"]["covariates_not_adjusted"] = skipped
            if not (model == "structural" and allow_negative):
                run.warnings += [w for lf in lifts if (w := sign_contradiction(lf))]
        else:
            run.analysis = _analyse(run, seed)
    return run


def _fit_structural(
    common, clusters, mediator, graph_source, allow_negative, pooling, bias_scale, confidence,
    n_draws, seed, early_windows=False, prior_on="coefficient", shape_prior="uniform",
) -> CalibrationRun:  # fmt: skip
    panel, graph = common["panel"], common["graph"]
    med = mediator or DEFAULT_MEDIATOR
    if mediator and mediator not in panel.data.columns:
        raise DataError(f"{panel.source}: no mediator column '{mediator}'")
    check_identifiable(
        graph,
        panel.channels,
        observed=[*panel.covariates, med],
        outcome=panel.y,
        source=graph_source or "the default graph",
        allow_missing=() if mediator else (med,),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MediatorWarning)
        model = StructuralModel(
            controls=common["controls"],
            clusters=clusters,
            mediator=med,
            strict_mediator=bool(mediator),
            graph=graph,
            allow_negative=allow_negative,
            early_windows=early_windows,
            prior_on=prior_on,
            shape_prior=shape_prior,
            pooling=pooling,
            demand_bias_scale=bias_scale,
            confidence=confidence,
            n_draws=n_draws,
            seed=seed,
        ).fit(panel, common["lifts"])
    messages = [str(w.message) for w in caught if issubclass(w.category, MediatorWarning)]
    return CalibrationRun(
        "structural", model, model.to_curves(), mediator=med, warnings=messages, **common
    )


def _fit_regression(
    common, clusters, forms, adstock, pooling, holdout, bias_scale, confidence, seed
) -> CalibrationRun:
    model = ResponseModel(
        controls=common["controls"],
        clusters=clusters,
        forms=list(forms),
        adstock=adstock,
        pooling=pooling,
        holdout=holdout,
    ).fit(common["panel"])
    result = calibrate(
        model, common["lifts"], bias_scale=bias_scale, confidence=confidence, seed=seed
    )
    curves = result.to_dict()
    curves["model"] = "regression"
    return CalibrationRun("regression", model, curves, result=result, **common)


def _analyse(run: CalibrationRun, seed: int) -> GraphAnalysis:
    # The structural report shows the graph only; the regression report compares its slopes with
    # DoWhy's estimates and refutations, so it draws more refutation simulations.
    if run.kind == "regression":
        return analyse(
            run.panel,
            run.graph,
            channels=run.model.channels_,
            experimental=experimental_slopes(run.result),
            num_simulations=20,
            confidence=run.result.confidence,
            seed=seed,
        )
    return analyse(
        run.panel,
        run.graph,
        channels=run.model.channels_,
        num_simulations=5,
        confidence=run.model.confidence,
        seed=seed,
    )
