"""The demo workflow: the whole story on a simulated world whose truth is known.

Design a branded-search go-dark test and a CTV test on the history, register
them, run both inside the world, read them out as pre-registered, calibrate
the response curves on the registry's lifts, allocate the budget under the 15%
weekly guardrail, choose a third test by the value of its information, run it
and calibrate again. :func:`run_demo` calls the same library functions the
commands call (``design_experiment``, ``read_out``, the registry,
:func:`~allocation.workflows.calibrate.calibrate_curves`,
:func:`~allocation.workflows.planning.plan_budget`, ``propose_tests``) and
returns a :class:`DemoRun` holding every result; the only thing it writes is
the experiment registry and audit trail (one database, ``registry_url``). The
command line writes the files and reports from the run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from allocation.audit import AuditLog
from allocation.business_rules import Rules
from allocation.curves import CurveSet
from allocation.json_values import as_json_value
from allocation.workflows.calibrate import CalibrationRun, calibrate_curves, registry_lifts
from allocation.workflows.planning import PlanRun, plan_budget
from allocation.workflows.proposals import propose_and_register
from causal.panel import Panel, load_panel
from causal.progress import enabled as progress_enabled
from causal.world import Experiment, World

BRAND_WINDOW = ("2025-10-01", "2025-11-25")  # eight weeks: branded search's true effect is small
CTV_WINDOW = ("2025-10-01", "2025-10-28")  # four weeks
HISTORY_END = "2025-09-30"
NEXT_WINDOW = ("2025-12-01", "2025-12-28")  # the third test, chosen by value of information
STEPS = (
    "simulating the world's history",
    "designing the branded-search go-dark test",
    "designing the CTV test on the remaining markets",
    "registering both tests and running them inside the world",
    "reading out both tests (pre-registered readouts)",
    "calibrating response curves on the registry's lifts",
    "allocating the budget under the 15% weekly guardrail",
    "choosing a third test by the value of its information, and registering it",
    "running it, reading it out and calibrating on all three lifts",
)


@dataclass
class DemoRun:
    """Every result of the demo, in the order the story makes them.

    Attributes
    ----------
    world : World
    history, clusters : DataFrame
        The panel before the tests, and the geo -> cluster mapping a user would have.
    designs : dict
        ``{"brand_search": DesignResult, "ctv": DesignResult}``.
    experiments : list of Experiment
        The two tests, then the third.
    control : list of str
        Markets in neither of the first two tests.
    panel, truth, panel_after, truth_after : DataFrame, dict
        The world with the first two tests, and with all three.
    readouts : dict
        Readouts by channel (``"next_test"`` for the third).
    calibration, calibration_after : CalibrationRun
        Curves on two lifts and on three.
    plan : PlanRun
    proposal : Proposal
        The ranked candidate tests; ``proposal_dict`` as proposals.json holds it.
    seconds : float
        Wall time of the run.
    """

    world: World
    history: pd.DataFrame
    clusters: pd.DataFrame
    designs: dict[str, Any] = field(default_factory=dict)
    experiments: list[Experiment] = field(default_factory=list)
    control: list[str] = field(default_factory=list)
    panel: pd.DataFrame | None = None
    truth: dict | None = None
    readouts: dict[str, Any] = field(default_factory=dict)
    calibration: CalibrationRun | None = None
    plan: PlanRun | None = None
    proposal: Any = None
    proposal_dict: dict | None = None
    panel_after: pd.DataFrame | None = None
    truth_after: dict | None = None
    calibration_after: CalibrationRun | None = None
    seconds: float = 0.0


def run_demo(
    registry_url: str,
    *,
    seed: int = 0,
    n_jobs: int = 1,
    sources: dict[str, str] | None = None,
    on_step: Callable[[int, int, str], None] | None = None,
) -> DemoRun:
    """Run the demo's nine steps; returns every result (see :class:`DemoRun`).

    Parameters
    ----------
    registry_url : str
        The experiment registry and audit trail (an SQLite path or SQLAlchemy URL); it must be new.
    seed : int, default=0
        Seed of the world and of every random draw.
    n_jobs : int, default=1
        Parallel workers of the design search.
    sources : dict, optional
        Names the panels and curves are shown under (``history``, ``panel``,
        ``panel_after``, ``curves``, ``curves_after``): the files the caller will write.
    on_step : callable, optional
        Called as ``on_step(n, total, text)`` when each step begins.
    """
    import time

    from experiments.design import design_experiment
    from experiments.registry import Registry

    names = {
        "history": "history.csv",
        "panel": "panel.csv",
        "panel_after": "panel_after.csv",
        "curves": "curves.json",
        "curves_after": "curves_after.json",
        **(sources or {}),
    }
    started = time.perf_counter()

    def step(n: int) -> None:
        if on_step is not None:
            on_step(n, len(STEPS), STEPS[n - 1])

    step(1)
    world = World(seed=seed)
    full = world.panel()
    run = DemoRun(world, full[full["date"] <= HISTORY_END], world.clusters())
    history = load_panel(run.history, name=names["history"])
    clusters = dict(
        zip(run.clusters["geo"].astype(str).str.strip(), run.clusters["cluster"].astype(str))
    )

    step(2)
    design = dict(seed=seed, n_jobs=n_jobs, progress=progress_enabled())
    run.designs["brand_search"] = design_experiment(
        history,
        n_treated=(12, 20),
        durations=[56],
        effect_sizes=[0, 0.005, 0.01, 0.015, 0.02, 0.03],
        **design,
    )
    step(3)
    run.designs["ctv"] = design_experiment(
        history,
        n_treated=(4, 8),
        durations=[28],
        exclude=list(run.designs["brand_search"].to_dict()["treated"]),
        effect_sizes=[0, 0.02, 0.04, 0.06, 0.08, 0.1],
        **design,
    )

    step(4)
    registry = Registry(registry_url)
    treated = {ch: tuple(as_json_value(d.to_dict())["treated"]) for ch, d in run.designs.items()}
    run.experiments = [
        Experiment("brand_search", treated["brand_search"], *BRAND_WINDOW, 0.0, name="brand_search_go_dark"),
        Experiment("ctv", treated["ctv"], *CTV_WINDOW, 0.0, name="ctv_go_dark"),
    ]  # fmt: skip
    # Both tests run at once, so neither may use the other's markets as controls.
    busy = {g for e in run.experiments for g in e.geos}
    run.control = [g for g in world.geos if g not in busy]
    for e in run.experiments:
        # Pre-registration fixes the readout settings before any test data exist.
        registry.add(
            e.name,
            design=as_json_value(run.designs[e.channel].to_dict()),
            channel=e.channel,
            start=e.start,
            end=e.end,
            control=run.control,
            seed=seed,
        )
        registry.start(e.name)
    run.panel, run.truth = world.simulate(run.experiments)
    panel = load_panel(run.panel, name=names["panel"])

    step(5)
    for e in run.experiments:
        run.readouts[e.channel] = _read_out_registered(registry, panel, e.name)

    step(6)
    run.calibration = calibrate_curves(
        panel, registry_lifts(registry_url), clusters=clusters, seed=seed, analyse_graph=True
    )

    step(7)
    curves = CurveSet.from_dict(as_json_value(run.calibration.curves), source=names["curves"])
    budget = float(f"{float(curves.current().sum()):.2f}")
    run.plan = plan_budget(
        curves,
        Rules.load(None, budget=budget, max_change=0.15, budget_mode=None),
        log=AuditLog(registry_url),
        sources={"curves_file": names["curves"], "constraints_file": None, "launch_calendar_file": None},
    )  # fmt: skip

    step(8)
    # The plan the test informs is re-made every week under the 15% guardrail, so over the year the
    # value of information is counted on, the guardrail does not hold the plan near today's.
    run.proposal = propose_and_register(
        curves,
        history,
        registry,
        name="next_test",
        start=NEXT_WINDOW[0],
        durations=[28],
        seed=seed,
        replan_every=7,
    )
    run.proposal_dict = {**as_json_value(run.proposal.to_dict()), "registered": "next_test"}
    best = run.proposal_dict["best"]
    third = Experiment(
        best["channel"], tuple(best["markets"]), *NEXT_WINDOW, float(best["intensity"]), name="next_test"
    )  # fmt: skip
    registry.start(third.name)
    run.experiments.append(third)

    step(9)
    run.panel_after, run.truth_after = world.simulate(run.experiments)
    after = load_panel(run.panel_after, name=names["panel_after"])
    # The registry's default control: every market outside this test and the tests overlapping it.
    run.readouts[third.name] = _read_out_registered(registry, after, third.name)
    run.calibration_after = calibrate_curves(
        after, registry_lifts(registry_url), clusters=clusters, seed=seed, analyse_graph=True
    )  # fmt: skip
    run.seconds = time.perf_counter() - started
    return run


def _read_out_registered(registry, panel: Panel, name: str):
    """Read out a test as pre-registered (``Registry.run_readout``) and return its ``Readout``.

    Every test of the demo treats markets a design search or the planner picked, so the registry
    turns the selection check on (:mod:`experiments.readout_selection`); nothing may differ from the
    pre-registration.
    """
    ((record, readout),) = registry.run_readout_results(name, panel)
    if record.exploratory:
        raise RuntimeError(f"the demo's readout of {name} departs from its pre-registration")
    return readout
