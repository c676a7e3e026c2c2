"""The test-proposal workflow: rank candidate tests around the registry's busy markets, register the best.

``liftlab propose-tests --registry DB --start D --register NAME`` and the demo's third test
do the same thing; :func:`propose_and_register` is that thing once.
"""

from __future__ import annotations

import pandas as pd

from allocation.curves import CurveSet
from causal.errors import DataError
from causal.panel import Panel, parse_date


def check_curves_match_panel(curves: CurveSet, panel: Panel, source: str) -> None:
    """Refuse curves of another outcome or period than the panel's: a test's value would be priced in
    the wrong unit (signups per week against a daily panel, revenue against signups)."""
    if curves.outcome != panel.y:
        raise DataError(
            f"{source}: key 'outcome' is '{curves.outcome}' but the panel's outcome is '{panel.y}'"
        )
    if curves.period != panel.period_name:
        raise DataError(
            f"{source}: key 'period' is '{curves.period}' but the panel is by {panel.period_name}"
        )


def window_end(panel: Panel, start: str, periods: int) -> str:
    """Last date of a test of ``periods`` periods from ``start`` at the panel's frequency."""
    first = parse_date(start, "--start")
    return str((first + (periods - 1) * pd.tseries.frequencies.to_offset(panel.freq)).date())


def longest_test(panel: Panel, durations: list[int] | None) -> int:
    """The longest test length the proposal may consider: the given ones, else the design's default
    lengths for this history (:func:`experiments.design_defaults.choose_settings`)."""
    if durations:
        return max(durations)
    from experiments.design_defaults import choose_settings, period_days

    plan = choose_settings(
        len(panel.dates), panel.period_name, days_per_period=period_days(panel.dates)
    )
    return max(plan.durations)


def registry_exclusion(registry, panel: Panel, start: str, periods: int) -> dict:
    """``propose_tests``'s ``exclude`` and ``excluded_by``: markets the registry's tests occupy during a
    test of ``periods`` periods from ``start`` (washouts included), and a phrase naming that window."""
    end = window_end(panel, start, periods)
    return {
        "exclude": sorted(registry.busy_geos(start, end)),
        "excluded_by": f"the registry's tests from {start} to {end} (a {periods}-period test, washouts "
        "included)",
    }


def propose_and_register(
    curves: CurveSet,
    panel: Panel,
    registry,
    *,
    name: str,
    start: str,
    durations: list[int],
    seed: int = 0,
    **options,
):
    """Rank candidate tests that avoid the registry's busy markets and register the best as ``name``.

    ``options`` go to :func:`allocation.next_test.propose_tests` (e.g. ``replan_every``)."""
    from allocation.next_test import propose_tests

    proposal = propose_tests(
        curves,
        panel,
        **registry_exclusion(registry, panel, start, max(durations)),
        durations=durations,
        seed=seed,
        **options,
    )
    register_best(registry, proposal, panel, name=name, start=start)
    return proposal


def register_best(registry, proposal, panel: Panel, *, name: str, start: str):
    """Register a proposal's best test as ``name`` from ``start``; the registry's record."""
    best = proposal.best.test
    # The design record says a search picked these markets: their readout gets the selection check.
    design = {"source": "propose-tests", "treated": list(best.markets), **proposal.best.to_dict()}
    return registry.add(
        name,
        design=design,
        cells=list(best.markets),
        start=start,
        end=window_end(panel, start, best.periods),
        channel=best.channel,
        reason="propose-tests: highest net value of information",
        note=f"{best.label}; spend multiplier {best.intensity:g} in the treated markets",
    )
