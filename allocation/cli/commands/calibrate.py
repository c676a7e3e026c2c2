"""``liftlab calibrate``: response curves fitted on the panel and calibrated on experiment lifts."""

from __future__ import annotations

import importlib

import click

from allocation.calibration import Lift, calibrate, load_lift, validate_lift
from allocation.cli.options import confidence_option, panel_options, read_panel, seed_option
from allocation.cli.outputs import outputs
from allocation.mmm import FORMS, ResponseModel
from causal.errors import ConfigError, DataError
from causal.graph import default_graph, joint_controls, normalise, read_graph
from causal.panel import read_table


def _registry_lifts(url: str) -> list[Lift]:
    try:
        registry = importlib.import_module("experiments.registry")
    except ModuleNotFoundError as exc:
        raise ConfigError("--registry needs the experiments.registry module, which is not installed") from exc
    fn = getattr(registry, "calibration_lifts", None)
    if fn is None:
        raise ConfigError("--registry: experiments.registry has no calibration_lifts(url) yet")
    return [Lift.from_dict(d, f"{url}#{i + 1}") for i, d in enumerate(fn(url))]


def _clusters(path: str | None) -> dict[str, str] | None:
    if not path:
        return None
    table = read_table(path)
    for col in ("geo", "cluster"):
        if col not in table.columns:
            raise DataError(f"{path}: no column '{col}' (the cluster file needs columns geo, cluster)")
    return dict(zip(table["geo"].astype(str).str.strip(), table["cluster"].astype(str)))


@click.command("calibrate")
@panel_options
@click.option("--lift", "lift_paths", multiple=True, type=click.Path(dir_okay=False),
              help="readout.json of an experiment (with --channel). Repeatable.")
@click.option("--registry", "registry_url", default=None, help="Experiment registry URL: its confirmatory readouts are lifts.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="curves.json to write.")
@click.option("--report", "report_path", default=None, type=click.Path(dir_okay=False), help="HTML report to write.")
@click.option("--graph", "graph_path", default=None, type=click.Path(dir_okay=False),
              help="Causal graph (DOT or GML); the default marketing graph otherwise.")
@click.option("--clusters", "clusters_path", default=None, type=click.Path(dir_okay=False),
              help="CSV with columns geo, cluster (market clusters); inferred from NA/LA/EM/AP geo ids otherwise.")
@click.option("--adstock", type=click.Choice(["geometric", "weibull"]), default="geometric", show_default=True)
@click.option("--forms", default=",".join(FORMS), show_default=True, help="Saturation forms to search.")
@click.option("--pooling", type=click.FloatRange(min=0.0, min_open=True), default=0.5, show_default=True,
              help="Prior sd of a market's curve around the global one, relative to it.")
@click.option("--holdout", type=click.IntRange(0, None), default=None,
              help="Periods held out at the end for the backtest (default one quarter; 0: none).")
@click.option("--bias-scale", type=click.FloatRange(min=0.0, min_open=True), default=1.0, show_default=True,
              help="Prior sd of a calibrated channel's confounding bias, relative to its coefficient.")
@confidence_option
@seed_option
def command(lift_paths: tuple[str, ...], registry_url: str | None, out_path: str, report_path: str | None,
            graph_path: str | None, clusters_path: str | None, adstock: str, forms: str, pooling: float,
            holdout: int | None, bias_scale: float, confidence: float, seed: int, **panel_kwargs) -> None:
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
    model = ResponseModel(controls=controls, clusters=_clusters(clusters_path), forms=form_list, adstock=adstock,
                          pooling=pooling, holdout=holdout).fit(panel)
    result = calibrate(model, lifts, bias_scale=bias_scale, confidence=confidence, seed=seed)
    curves = result.to_dict()
    skipped = [c for c in panel.covariates if c not in controls]
    curves["fit"]["covariates_not_adjusted"] = skipped
    with outputs() as files:
        files.write_json(out_path, curves)
        if report_path:
            from allocation.cli.curves_report import render_report

            files.write_text(report_path, render_report(result, panel, graph, seed=seed))
    click.echo(f"calibrated {len(model.channels_)} channels x {len(model.clusters_)} markets on {len(lifts)} lifts "
               f"-> {out_path}" + (f", {report_path}" if report_path else ""))
    click.echo(f"controls: {', '.join(controls) or 'none'}" + (f"; not adjusted for (descendants of a channel or "
                                                                 f"not in the graph): {', '.join(skipped)}" if skipped else ""))
    click.echo(result.summary())
    if model.backtest_ is not None:
        bt = model.backtest_
        click.echo(f"backtest {bt.start}..{bt.end}: WAPE of total {model.outcome_} {bt.wape_total:.1%}, "
                   f"per geo {bt.wape_geo:.1%}, bias {bt.bias_total:+.1%}")
