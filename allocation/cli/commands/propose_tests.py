"""``liftlab propose-tests``: rank candidate tests by what their information is worth to the budget."""

from __future__ import annotations

import click

from allocation.cli.options import (
    currency_option,
    int_range,
    numbers,
    panel_options,
    read_panel,
    seed_option,
    split_list,
)
from allocation.cli.outputs import outputs
from allocation.curves import CurveSet
from allocation.next_test import INTENSITIES, propose_tests
from allocation.workflows.proposals import (
    check_curves_match_panel,
    longest_test,
    register_best,
    registry_exclusion,
)
from causal.errors import ConfigError, mask_url
from causal.panel import parse_date


@click.command("propose-tests")
@click.option(
    "--curves",
    "curves_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Calibrated curves.json with posterior draws (liftlab calibrate).",
)
@panel_options
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="proposals.json to write.",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="HTML report to write.",
)
@click.option(
    "--channels", default=None, help="Channels that may be tested (default: all in the curves)."
)
@click.option(
    "--treated",
    default=None,
    help="Treated-set sizes, e.g. 3..12 (default 3 to a quarter of the markets).",
)
@click.option(
    "--durations",
    default=None,
    help="Test lengths in periods, e.g. 28,56 (default: chosen from the history).",
)
@click.option(
    "--intensities",
    default="go-dark,heavy-up",
    show_default=True,
    help=f"Spend changes to consider: {', '.join(INTENSITIES)}.",
)
@click.option(
    "--horizon",
    type=click.IntRange(1),
    default=None,
    help="Periods a better plan pays over (default: a year).",
)
@click.option(
    "--budget",
    type=float,
    default=None,
    help="Budget per period of the plan (default: current spend).",
)
@click.option(
    "--max-change",
    type=click.FloatRange(0, 10),
    default=0.15,
    show_default=True,
    help="Guardrail of the plan the tests inform.",
)
@click.option(
    "--registry",
    "registry_url",
    default=None,
    help="Registry (path or URL): its busy markets are excluded; with --register, the best test is added.",
)
@click.option(
    "--start", default=None, help="First date the test would run (for the registry's busy markets)."
)
@click.option(
    "--register", "register_name", default=None, help="Register the best candidate under this name."
)
@click.option(
    "--replan-every",
    type=click.IntRange(min=1),
    default=None,
    help="Periods between re-plans, each under --max-change: over the horizon lines may move further "
    "(the band is capped at 50%). Default: one guardrail step for the whole horizon.",
)
@seed_option
@currency_option
def command(
    curves_path: str,
    out_path: str,
    report_path: str | None,
    channels: str | None,
    treated: str | None,
    durations: str | None,
    intensities: str,
    horizon: int | None,
    budget: float | None,
    max_change: float,
    registry_url: str | None,
    start: str | None,
    register_name: str | None,
    replan_every: int | None,
    seed: int,
    currency: str | None,
    **panel_kwargs,
) -> None:
    """Rank candidate tests (channel x markets x length x intensity) by expected value of information."""
    if register_name is not None and not register_name.strip():
        raise ConfigError("--register is empty: give the name to register the best candidate under")
    if register_name and not (registry_url and start):
        raise ConfigError("--register needs --registry and --start (when the test would begin)")
    if start is not None and not registry_url:
        raise ConfigError("--start is used with --registry only (the registry's busy markets then)")
    if start is not None:
        parse_date(start, "--start")  # before the registry and the panel are read
    for name, value in (("--channels", channels), ("--intensities", intensities)):
        if value is not None and not split_list(value):
            raise ConfigError(f"{name} is empty: leave it out for the default")
    curves = CurveSet.load(curves_path)
    panel = read_panel(panel_kwargs)
    check_curves_match_panel(curves, panel, curves_path)
    exclusion: dict = {}
    lengths = numbers(durations, "--durations", int)
    if registry_url:
        if not start:
            raise ConfigError("--registry needs --start: the date the proposed test would begin")
        from experiments.registry import Registry

        # Registering creates the registry if needed; only reading it must find one.
        registry = Registry(registry_url, create=bool(register_name))
        exclusion = registry_exclusion(registry, panel, start, longest_test(panel, lengths))
    proposal = propose_tests(
        curves,
        panel,
        channels=split_list(channels) or None,
        **exclusion,
        n_treated=int_range(treated, "--treated"),
        durations=lengths,
        intensities=tuple(split_list(intensities)),
        budget=budget,
        max_change=max_change,
        horizon=horizon,
        replan_every=replan_every,
        seed=seed,
    )
    result = proposal.to_dict()
    html = None
    if report_path:
        from allocation.cli.proposal_report import proposal_report

        html = proposal_report(proposal, currency=currency)
    registered = None
    if register_name:
        registered = register_best(registry, proposal, panel, name=register_name, start=start)
        result["registered"] = register_name
    with outputs() as files:
        files.write_json(out_path, result)
        if html is not None:
            files.write_text(report_path, html)
    click.echo(proposal.summary())
    if registered is not None:
        click.echo(f"registered '{register_name}' in {mask_url(registry_url)}")
    click.echo(f"wrote {out_path}" + (f" and {report_path}" if report_path else ""))
