"""``liftlab calibrate``: response curves fitted on the panel and calibrated on experiment lifts.

The command parses its options, calls :func:`allocation.workflows.calibrate_curves` and
writes and prints what it returns; the report renders the run (allocation/cli/curves_report.py).
"""

from __future__ import annotations

import click

from allocation.calibration import load_lift
from allocation.cli.options import (
    confidence_option,
    currency_option,
    out_option,
    panel_options,
    read_panel,
    report_option,
    seed_option,
)
from allocation.cli.outputs import outputs
from allocation.cli.report import fmt_auto, per_spend_label
from allocation.response_model import FORMS
from allocation.structural_inputs import PRIOR_ON, SHAPE_PRIORS
from allocation.workflows.calibrate import (
    CalibrationRun,
    calibrate_curves,
    read_clusters,
    registry_lifts,
)
from causal.errors import ConfigError, DataError


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
@out_option("curves.json to write.")
@report_option
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
    "--early-window",
    "early_windows",
    is_flag=True,
    help="Also fit each lift's first week given its total (readout.json 'early') as a term on the "
    "channel's carryover (structural model; off by default, docs/calibration.md).",
)
@click.option(
    "--prior-on",
    type=click.Choice(PRIOR_ON),
    default="coefficient",
    show_default=True,
    help="What the structural model's channel prior holds the same across curve shapes: the Hill "
    "coefficient, or the marginal return at mean spend (curvature closer to the truth for planning; "
    "docs/calibration.md).",
)
@click.option(
    "--shape-prior",
    type=click.Choice(SHAPE_PRIORS),
    default="uniform",
    show_default=True,
    help="The structural model's prior over its curve-shape grid: every shape equally likely, or "
    "Meridian's default Hill priors (half-saturation near current spend, exponent 1; what the daily "
    "loop plans on; narrower credit intervals that cover less often, docs/calibration.md).",
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
@currency_option
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
    early_windows: bool,
    prior_on: str,
    shape_prior: str,
    n_draws: int,
    adstock: str,
    forms: str,
    pooling: float,
    holdout: int | None,
    bias_scale: float,
    confidence: float,
    currency: str | None,
    seed: int,
    **panel_kwargs,
) -> None:
    """Fit response curves on the panel and calibrate them on experiment lifts: curves.json."""
    lifts = [load_lift(p) for p in lift_paths]
    form_list = [f.strip() for f in forms.split(",") if f.strip()]
    bad = [f for f in form_list if f not in FORMS]
    if bad or not form_list:
        raise ConfigError(f"--forms: '{','.join(bad) or forms}' is not among {', '.join(FORMS)}")
    if early_windows and model_kind == "regression":
        raise ConfigError("--early-window: only the structural model uses a lift's first week")
    if prior_on != "coefficient" and model_kind == "regression":
        raise ConfigError("--prior-on: only the structural model has a prior per curve shape")
    if shape_prior != "uniform" and model_kind == "regression":
        raise ConfigError("--shape-prior: only the structural model has a prior over curve shapes")
    panel = read_panel(panel_kwargs)
    if registry_url:
        try:
            lifts += registry_lifts(registry_url)
        except ConfigError as exc:
            raise ConfigError(f"--registry: {exc}") from None
    if mediator and mediator not in panel.data.columns:
        raise DataError(f"{panel.source}: no mediator column '{mediator}' (--mediator)")
    run = calibrate_curves(
        panel,
        lifts,
        graph=graph_path,
        model=model_kind,
        clusters=read_clusters(clusters_path),
        cluster_col=cluster_col,
        cluster_source=str(clusters_path or "the cluster mapping"),
        mediator=mediator,
        allow_negative=allow_negative,
        early_windows=early_windows,
        prior_on=prior_on,
        shape_prior=shape_prior,
        n_draws=n_draws,
        adstock=adstock,
        forms=form_list,
        pooling=pooling,
        holdout=holdout,
        bias_scale=bias_scale,
        confidence=confidence,
        seed=seed,
        analyse_graph=bool(report_path),
    )
    for text in run.warnings:
        click.echo(f"warning: {text}", err=True)
    with outputs() as files:
        files.write_json(out_path, run.curves)
        if report_path:
            from allocation.cli.curves_report import render_calibration_report

            files.write_text(report_path, render_calibration_report(run, currency=currency))
    wrote = f"-> {out_path}" + (f", {report_path}" if report_path else "")
    if run.kind == "regression":
        _echo_regression(run, wrote)
    else:
        _echo_structural(run, wrote)


def _echo_structural(run: CalibrationRun, wrote: str) -> None:
    model, curves = run.model, run.curves
    n_clusters = len([c for c in model.clusters_ if c is not None]) or 1
    click.echo(
        f"calibrated {len(model.channels_)} channels x {len(model.geos_)} markets "
        # "on N lifts" whatever N: scripts and tests read this line.
        f"({n_clusters} cluster{'s' if n_clusters != 1 else ''}) on {len(run.lifts)} lifts {wrote}"
    )
    if model.has_mediator_:
        proxy = run.mediator
    elif getattr(model, "mediator_proxy_", None):
        proxy = f"spend_{model.mediator_proxy_} (no {run.mediator} column: it stands in for the queries)"
    else:
        proxy = "none (not adjusted)"
    click.echo(f"controls: {', '.join(run.controls) or 'none'}; demand proxy: {proxy}")
    s = model.summary()
    conf = f"{model.confidence:.0%}"
    unit = per_spend_label(model.outcome_)
    for ch, r in s.iterrows():
        click.echo(
            f"  {ch:<16} total {r['total']:>12,.0f} [{r['lo']:,.0f}, {r['hi']:,.0f}] ({conf})  direct "
            f"{r['direct']:,.0f}  mediated {r['mediated']:,.0f}  {fmt_auto(1000 * r['roas'])} {unit}"
            + ("  (lift)" if r["lifted"] else "")
        )
    for r in curves["lifts"]:
        click.echo(
            f"  lift {r['name']}: measured {r['measured']:,.0f}, model without lifts "
            f"{r['predicted_before']:,.0f}, calibrated {r['predicted_after']:,.0f}"
            + ("  CONFLICT" if r["conflict"] else "")
        )
    for c in curves["conflicts"]:
        click.echo(f"  conflict: {c}")


def _echo_regression(run: CalibrationRun, wrote: str) -> None:
    model = run.model
    click.echo(
        f"calibrated {len(model.channels_)} channels x {len(model.clusters_)} markets on "
        f"{len(run.lifts)} lifts {wrote}"
    )
    click.echo(
        f"controls: {', '.join(run.controls) or 'none'}"
        + (
            f"; not adjusted for (descendants of a channel or "
            f"not in the graph): {', '.join(run.skipped)}"
            if run.skipped
            else ""
        )
    )
    click.echo(run.result.summary())
    if model.backtest_ is not None:
        bt = model.backtest_
        click.echo(
            f"backtest {bt.start}..{bt.end}: WAPE of total {model.outcome_} {bt.wape_total:.1%}, "
            f"per geo {bt.wape_geo:.1%}, bias {bt.bias_total:+.1%}"
        )
