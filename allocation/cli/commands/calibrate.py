"""``liftlab calibrate``: response curves fitted on the panel and calibrated on experiment lifts."""

from __future__ import annotations

import importlib
import warnings

import click

from allocation.calibration import Lift, calibrate, load_lift, validate_lift
from allocation.cli.options import confidence_option, panel_options, read_panel, seed_option
from allocation.cli.outputs import outputs
from allocation.jsonfile import read_json
from allocation.mmm import FORMS, ResponseModel
from allocation.structural import MediatorWarning, StructuralModel, resolve_clusters
from causal.errors import ConfigError, DataError, mask_url
from causal.graph import check_identifiable, default_graph, joint_controls, normalise, read_graph
from causal.panel import read_table


def _registry_lifts(url: str) -> list[Lift]:
    try:
        registry = importlib.import_module("experiments.registry")
    except ModuleNotFoundError as exc:
        raise ConfigError(
            "--registry needs the experiments.registry module, which is not installed"
        ) from exc
    fn = getattr(registry, "calibration_lifts", None)
    if fn is None:
        raise ConfigError("--registry: experiments.registry has no calibration_lifts(url) yet")
    shown = mask_url(url)
    return [Lift.from_dict(d, f"{shown}#{i + 1}") for i, d in enumerate(fn(url))]


def _clusters(path: str | None) -> dict[str, str] | None:
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
    return dict(zip(table["geo"].astype(str).str.strip(), table["cluster"].astype(str)))


@click.command("calibrate")
@panel_options
@click.option(
    "--lift",
    "lift_paths",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="readout.json of an experiment (with --channel). Repeatable.",
)
@click.option(
    "--registry",
    "registry_url",
    default=None,
    help="Experiment registry URL: its confirmatory readouts are lifts.",
)
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="curves.json to write.",
)
@click.option(
    "--report",
    "report_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="HTML report to write.",
)
@click.option(
    "--graph",
    "graph_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="Causal graph (DOT or GML); the default marketing graph otherwise.",
)
@click.option(
    "--model",
    "model_kind",
    type=click.Choice(["structural", "regression"]),
    default="structural",
    show_default=True,
    help="structural: queries and signups equations along the graph (Bayesian, "
    "per-market lines with posterior draws); regression: the older one-equation correlational fit.",
)
@click.option(
    "--clusters",
    "clusters_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="Market clusters: CSV with columns geo, cluster, or JSON {geo: cluster}; every geo must be named.",
)
@click.option("--cluster-col", default=None, help="Panel column holding each geo's market cluster.")
@click.option(
    "--mediator",
    default=None,
    help="Branded-query column (default brand_queries if present; when named it must be usable).",
)
@click.option(
    "--allow-negative", is_flag=True, help="Allow negative channel effects (structural model)."
)
@click.option(
    "--draws",
    "n_draws",
    type=click.IntRange(10, 5000),
    default=200,
    show_default=True,
    help="Joint posterior draws written per line (structural model).",
)
@click.option(
    "--adstock",
    type=click.Choice(["geometric", "weibull"]),
    default="geometric",
    show_default=True,
    help="Adstock of --model regression (the structural model uses geometric).",
)
@click.option(
    "--forms",
    default=",".join(FORMS),
    show_default=True,
    help="Saturation forms of --model regression.",
)
@click.option(
    "--pooling",
    type=click.FloatRange(min=0.0, min_open=True),
    default=0.5,
    show_default=True,
    help="Prior sd of a market's curve around the global one, relative to it.",
)
@click.option(
    "--holdout",
    type=click.IntRange(0, None),
    default=None,
    help="Periods held out at the end for the backtest of --model regression (default one quarter; 0: none).",
)
@click.option(
    "--bias-scale",
    type=click.FloatRange(min=0.0, min_open=True),
    default=1.0,
    show_default=True,
    help="Prior sd of a channel's confounding bias, relative to its coefficient (a calibrated channel in "
    "--model regression; a demand-following channel without the mediator in the structural model).",
)
@confidence_option
@seed_option
def command(
    lift_paths: tuple[str, ...],
    registry_url: str | None,
    out_path: str,
    report_path: str | None,
    graph_path: str | None,
    model_kind: str,
    clusters_path: str | None,
    cluster_col: str | None,
    mediator: str | None,
    allow_negative: bool,
    n_draws: int,
    adstock: str,
    forms: str,
    pooling: float,
    holdout: int | None,
    bias_scale: float,
    confidence: float,
    seed: int,
    **panel_kwargs,
) -> None:
    """Fit response curves on the panel and calibrate them on experiment lifts: curves.json."""
    lifts = [load_lift(p) for p in lift_paths]
    form_list = [f.strip() for f in forms.split(",") if f.strip()]
    bad = [f for f in form_list if f not in FORMS]
    if bad or not form_list:
        raise ConfigError(f"--forms: '{','.join(bad) or forms}' is not among {', '.join(FORMS)}")
    panel = read_panel(panel_kwargs)
    if registry_url:
        lifts += _registry_lifts(registry_url)
    for lf in lifts:
        # Before the fit, so bad input fails in a moment.
        validate_lift(lf, panel)
    graph = read_graph(graph_path) if graph_path else default_graph(panel.channels, panel.y)
    graph = normalise(graph, panel.channels, panel.y)
    controls = joint_controls(graph, panel.channels, panel.covariates)
    skipped = [c for c in panel.covariates if c not in controls and c != cluster_col]
    mapping = _clusters(clusters_path)
    clusters = resolve_clusters(
        panel, mapping, cluster_col, source=str(clusters_path or "the cluster mapping")
    )
    if model_kind == "regression":
        _regression(
            panel,
            lifts,
            graph,
            controls,
            skipped,
            clusters,
            form_list,
            adstock,
            pooling,
            holdout,
            bias_scale,
            confidence,
            seed,
            out_path,
            report_path,
        )
        return
    med = mediator or "brand_queries"
    if mediator and mediator not in panel.data.columns:
        raise DataError(f"{panel.source}: no mediator column '{mediator}' (--mediator)")
    check_identifiable(
        graph,
        panel.channels,
        observed=[*panel.covariates, med],
        outcome=panel.y,
        source=graph_path or "the default graph",
        allow_missing=() if mediator else (med,),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MediatorWarning)
        model = StructuralModel(
            controls=controls,
            clusters=clusters,
            mediator=med,
            strict_mediator=bool(mediator),
            graph=graph,
            allow_negative=allow_negative,
            pooling=pooling,
            demand_bias_scale=bias_scale,
            confidence=confidence,
            n_draws=n_draws,
            seed=seed,
        ).fit(panel, lifts)
    for w in caught:
        if issubclass(w.category, MediatorWarning):
            click.echo(f"warning: {w.message}", err=True)
    curves = model.to_curves()
    curves["fit"]["covariates_not_adjusted"] = skipped
    with outputs() as files:
        files.write_json(out_path, curves)
        if report_path:
            from allocation.cli.curves_report import render_structural_report

            files.write_text(
                report_path, render_structural_report(model, curves, panel, graph, seed=seed)
            )
    click.echo(
        f"calibrated {len(model.channels_)} channels x {len(model.geos_)} markets "
        f"({len([c for c in model.clusters_ if c is not None]) or 1} clusters) on {len(lifts)} lifts "
        f"-> {out_path}" + (f", {report_path}" if report_path else "")
    )
    click.echo(
        f"controls: {', '.join(controls) or 'none'}; demand proxy: "
        f"{med if model.has_mediator_ else 'none (not adjusted)'}"
    )
    s = model.summary()
    conf = f"{confidence:.0%}"
    for ch, r in s.iterrows():
        click.echo(
            f"  {ch:<16} total {r['total']:>12,.0f} [{r['lo']:,.0f}, {r['hi']:,.0f}] ({conf})  direct "
            f"{r['direct']:,.0f}  mediated {r['mediated']:,.0f}  ROAS {r['roas']:.4g}"
            + ("  (lift)" if r["lifted"] else "")
        )
    for r in curves["lifts"]:
        click.echo(
            f"  lift {r['name']}: measured {r['measured']:,.0f}, model without lifts {r['predicted_before']:,.0f}, "
            f"calibrated {r['predicted_after']:,.0f}" + ("  CONFLICT" if r["conflict"] else "")
        )
    for c in curves["conflicts"]:
        click.echo(f"  conflict: {c}")


def _regression(
    panel,
    lifts,
    graph,
    controls,
    skipped,
    clusters,
    form_list,
    adstock,
    pooling,
    holdout,
    bias_scale,
    confidence,
    seed,
    out_path,
    report_path,
) -> None:
    """The older correlational path (``--model regression``)."""
    model = ResponseModel(
        controls=controls,
        clusters=clusters,
        forms=form_list,
        adstock=adstock,
        pooling=pooling,
        holdout=holdout,
    ).fit(panel)
    result = calibrate(model, lifts, bias_scale=bias_scale, confidence=confidence, seed=seed)
    curves = result.to_dict()
    curves["model"] = "regression"
    curves["fit"]["covariates_not_adjusted"] = skipped
    with outputs() as files:
        files.write_json(out_path, curves)
        if report_path:
            from allocation.cli.curves_report import render_report

            files.write_text(report_path, render_report(result, panel, graph, seed=seed))
    click.echo(
        f"calibrated {len(model.channels_)} channels x {len(model.clusters_)} markets on {len(lifts)} lifts "
        f"-> {out_path}" + (f", {report_path}" if report_path else "")
    )
    click.echo(
        f"controls: {', '.join(controls) or 'none'}"
        + (
            f"; not adjusted for (descendants of a channel or "
            f"not in the graph): {', '.join(skipped)}"
            if skipped
            else ""
        )
    )
    click.echo(result.summary())
    if model.backtest_ is not None:
        bt = model.backtest_
        click.echo(
            f"backtest {bt.start}..{bt.end}: WAPE of total {model.outcome_} {bt.wape_total:.1%}, "
            f"per geo {bt.wape_geo:.1%}, bias {bt.bias_total:+.1%}"
        )
