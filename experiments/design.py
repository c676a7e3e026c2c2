"""Geo-experiment design: which markets to treat, for how long, the MDE and the investment.

:func:`design_experiment` generates candidate treated sets under the user's
constraints (:mod:`experiments.candidates`), simulates each one's power on
history with the readout's own estimator and inference
(:mod:`experiments.power`), turns the minimum detectable effect into an
investment, ranks the designs and recommends one (or one per cell of a
multi-cell test).

The search runs in two stages so that large searches stay fast: every
candidate is first simulated on a few historical windows, and the best
``n_finalists`` by MDE are then simulated on all ``n_windows``. Work is spread
over ``n_jobs`` processes with joblib, or over a Dask cluster through joblib's
Dask backend when a scheduler address is given; results do not depend on
either (every computation is deterministic given the seed).

References
----------
Vaver, J. & Koehler, J. (2011). Measuring ad effectiveness using geo experiments. Google Inc.
Abadie, A., Diamond, A. & Hainmueller, J. (2010). Synthetic control methods for
comparative case studies. JASA 105(490), 493-505.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from causal.base import clone, make_estimator
from causal.errors import ConfigError, DataError
from causal.panel import Panel
from experiments.candidates import (
    check_constraints,
    generate_candidates,
    neighbours,
    similarity_matrix,
)
from experiments.design_defaults import DesignSettings, choose_settings, period_days
from experiments.design_screen import screen_mde, stratified_masks
from experiments.power import (
    PowerResult,
    candidate_power,
    null_rejection_rate,
    simulation_windows,
)

DEFAULT_EFFECTS = tuple(np.round(np.arange(0.0, 0.2501, 0.025), 4))


@dataclass
class DesignText:
    """A printable summary (``str``) that also renders as HTML in notebooks."""

    text: str

    def __str__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(self.text)}</pre>"


@dataclass
class Design:
    """One evaluated design: treated set, test length, power and investment."""

    power: PowerResult
    fit: dict
    investment: float | None = None
    within_budget: bool = True
    rank: int = 0
    max_false_positive_rate: float = 1.0
    null_rate: float | None = None
    period: str = "day"
    period_days: float = 1.0

    @property
    def null_rejection_rate(self) -> float:
        """Rejection rate with no effect: on the dense null windows when measured, else the power windows'."""
        return self.power.false_positive_rate if self.null_rate is None else self.null_rate

    @property
    def calibrated(self) -> bool:
        """The readout's false positive rate on history is at most ``max_false_positive_rate``."""
        return self.null_rejection_rate <= self.max_false_positive_rate + 1e-12

    @property
    def feasible(self) -> bool:
        """Reaches the power target, within budget, and not over-rejecting on history."""
        return self.mde is not None and self.within_budget and self.calibrated

    @property
    def treated(self) -> tuple[str, ...]:
        return self.power.treated

    @property
    def duration(self) -> int:
        return self.power.duration

    @property
    def mde(self) -> float | None:
        return self.power.mde

    def to_dict(self) -> dict:
        d = {
            "rank": self.rank,
            **self.power.to_dict(),
            "investment": self.investment,
            "duration_days": int(round(self.duration * self.period_days)),
            "duration_periods": int(self.duration),
            "period": self.period,
            "within_budget": self.within_budget,
            "null_rejection_rate": self.null_rejection_rate,
            "calibrated": self.calibrated,
            "feasible": self.feasible,
            "fit": self.fit,
        }
        return d


@dataclass
class DesignResult:
    """The outcome of :func:`design_experiment`; ``to_dict()`` is design.json.

    Attributes
    ----------
    outcome, estimator : str
    alpha, power_target : float
    cells : list of Design
        The recommended design of each cell (one for a single-cell test),
        with power recomputed against the controls left by all cells.
    control : list of str
        Donor geos: every geo in no cell.
    candidates : list of Design
        Every fully simulated design, ranked (best first).
    n_screened : int
        Candidates simulated in the screening stage.
    settings : dict
        The inputs, for the record.
    fit_series : dict
        The recommended design's pre-period fit over the whole history
        (``dates``, ``observed``, ``synthetic``), for the report.
    mde_by_duration : list of dict
        Best MDE and investment per test length.
    plan : DesignSettings
        Test lengths, pre-periods and window counts, chosen or given.
    held_out : bool
        Whether the cells' figures were measured on windows the search did not see.
    search_cells : list of Design
        The same designs as measured on the search's windows (their MDE there is
        biased low: the winner's curse), for comparison with ``cells``.
    """

    outcome: str
    estimator: str
    alpha: float
    power_target: float
    cells: list[Design]
    control: list[str]
    candidates: list[Design]
    n_screened: int
    settings: dict
    fit_series: dict = field(repr=False, default_factory=dict)
    mde_by_duration: list[dict] = field(default_factory=list)
    plan: DesignSettings | None = None
    held_out: bool = False
    search_cells: list[Design] = field(default_factory=list)

    @property
    def best(self) -> Design:
        return self.cells[0]

    def to_dict(self) -> dict:
        b = self.best
        return {
            "outcome": self.outcome,
            "estimator": self.estimator,
            "alpha": self.alpha,
            "power_target": self.power_target,
            "treated": list(b.treated),
            "control": list(self.control),
            "duration_days": int(round(b.duration * b.period_days)),
            "duration_periods": int(b.duration),
            "period": b.period,
            "mde": b.mde,
            "mde_se": b.power.mde_se,
            "mde_power": b.power.mde_power,
            "power_se": b.power.power_se,
            "mde_incremental": b.power.mde_incremental,
            "power_curve": b.power.to_dict()["power_curve"],
            "false_positive_rate": b.power.false_positive_rate,
            "false_positive_rate_se": b.power.false_positive_rate_se,
            "held_out": self.held_out,
            "n_windows": b.power.n_windows,
            "n_effective_windows": b.power.n_effective,
            "search_mde": self.search_cells[0].mde if self.search_cells else b.mde,
            "search_false_positive_rate": (
                self.search_cells[0].null_rejection_rate
                if self.search_cells
                else b.power.false_positive_rate
            ),
            "investment": b.investment,
            "fit": b.fit,
            "cells": [dict(c.to_dict(), cell=i + 1) for i, c in enumerate(self.cells)],
            "mde_by_duration": self.mde_by_duration,
            "candidates": [c.to_dict() for c in self.candidates],
            "n_screened": self.n_screened,
            "settings": self.settings,
        }

    def summary(self) -> DesignText:
        b = self.best
        lines = [
            f"design ({self.estimator}, alpha {self.alpha}, power target {self.power_target:.0%}; "
            + (
                f"{self.settings['n_prescreen']:,} treated sets prescreened, "
                if self.settings.get("n_prescreen")
                else ""
            )
            + f"{self.n_screened} candidates screened, {len(self.candidates)} simulated in full)",
        ]
        per = self.plan.period if self.plan is not None else "period"
        where = (
            (
                f"measured on {self.best.power.n_windows} held-out windows (~{self.best.power.n_effective:.1f} "
                "independent), not those that chose it"
            )
            if self.held_out
            else (
                "measured on the windows that chose it (too short a history to hold any out: optimistic)"
            )
        )
        for i, c in enumerate(self.cells):
            head = f"cell {i + 1}: " if len(self.cells) > 1 else "recommended: "
            se = "" if c.power.mde_se is None else f" +- {c.power.mde_se:.1%}"
            mde = (
                "not reached within the effect sizes"
                if c.mde is None
                else (
                    f"{c.mde:.1%}{se} ({c.power.mde_incremental:,.0f} {self.outcome}), power there "
                    f"{c.power.mde_power:.2f} +- {c.power.power_se:.2f}"
                )
            )
            inv = "" if c.investment is None else f", investment {c.investment:,.0f}"
            lines.append(
                f"{head}treat {', '.join(c.treated)} for {c.duration} {per}s: MDE {mde}{inv}, "
                f"false positive rate {c.power.false_positive_rate:.2f} +- "
                f"{c.power.false_positive_rate_se:.2f}"
            )
        lines.append(
            f"  ({where}; on the search windows: MDE "
            + (
                "—"
                if not self.search_cells or self.search_cells[0].mde is None
                else f"{self.search_cells[0].mde:.1%}"
            )
            + ")"
        )
        lines.append(
            "power curve: "
            + ", ".join(f"{x:.3g}: {p:.2f}" for x, p in zip(b.power.lifts, b.power.power))
        )
        lines.append("top candidates:")
        for c in self.candidates[:5]:
            mde = "—" if c.mde is None else f"{c.mde:.1%}"
            inv = "" if c.investment is None else f"  investment {c.investment:,.0f}"
            lines.append(
                f"  {c.rank:>2}. {', '.join(c.treated)} ({c.duration} {per}s): MDE {mde}{inv} (search windows)"
            )
        return DesignText("\n".join(lines))

    def plot(self, *, ax=None, show: bool = False, top: int = 5):
        """Power curves of the top designs; returns ``(fig, ax)``."""
        import matplotlib.pyplot as plt

        fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 4))
        from matplotlib.ticker import FuncFormatter, PercentFormatter

        for c in self.candidates[:top]:
            # Long geo lists would squeeze the axes; the ranking table lists them in full.
            geos = (
                ", ".join(c.treated)
                if len(c.treated) <= 5
                else f"{', '.join(c.treated[:3])}, … ({len(c.treated)} geos)"
            )
            ax.plot(
                c.power.lifts,
                c.power.power,
                marker="o",
                label=f"{c.rank}. {geos}, {c.duration} periods",
            )
        ax.axhline(
            self.power_target,
            color="grey",
            ls="--",
            lw=1,
            label=f"power target {self.power_target:.0%}",
        )
        ax.axhline(self.alpha, color="grey", ls=":", lw=1, label=f"alpha {self.alpha:.0%}")
        ax.xaxis.set_major_formatter(
            FuncFormatter(lambda v, _: f"{100 * v:.3g}%")
        )  # 0.5%, 1%, 1.5%
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_xlabel("injected lift")  # ticks in % of the treated geos' outcome
        ax.set_ylabel("power (share of windows detected)")
        ax.set_title(
            f"Power against lift, top {min(top, len(self.candidates))} designs ({self.estimator})"
        )
        ax.legend(
            fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0)
        )  # outside: never over a curve
        if show:
            plt.show()
        return fig, ax


# -- the search ------------------------------------------------------------------
def _run_tasks(
    tasks: list[tuple],
    fn: Callable,
    *,
    n_jobs: int,
    scheduler: str | None,
    progress: bool,
    desc: str,
):
    """Run ``fn(*task)`` for every task locally (joblib) or on a Dask cluster; results in task order."""
    from joblib import Parallel, delayed, parallel_config
    from tqdm.auto import tqdm

    bar = tqdm(total=len(tasks), desc=desc, disable=not progress, leave=False)
    try:
        if scheduler is not None:
            from distributed import Client

            try:
                client = Client(scheduler, timeout="10s", set_as_default=False)
            except OSError as exc:
                raise ConfigError(
                    f"cannot reach the Dask scheduler at '{scheduler}' ({exc})"
                ) from exc
            try:
                with client.as_current(), parallel_config(backend="dask"):
                    gen = Parallel(n_jobs=-1, return_as="generator")(delayed(fn)(*t) for t in tasks)
                    out = []
                    for r in gen:
                        out.append(r)
                        bar.update()
            finally:
                client.close()
            return out
        if n_jobs == 1:
            out = []
            for t in tasks:
                out.append(fn(*t))
                bar.update()
            return out
        out = []
        for r in Parallel(n_jobs=n_jobs, return_as="generator", batch_size="auto")(
            delayed(fn)(*t) for t in tasks
        ):
            out.append(r)
            bar.update()
        return out
    finally:
        bar.close()


def _power_task(
    Y, treated, control, duration, starts, effects, estimator, alpha, power_target, names, seed
):
    from threadpoolctl import threadpool_limits

    # The work is many small matrix operations: multithreaded BLAS only adds contention
    # (ten times slower on a busy 2-core machine); parallelism comes from the tasks.
    with threadpool_limits(limits=1):
        return _power_task_inner(
            Y,
            treated,
            control,
            duration,
            starts,
            effects,
            estimator,
            alpha,
            power_target,
            names,
            seed,
        )


def _null_task(Y, treated, control, duration, starts, estimator, alpha, seed):
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return null_rejection_rate(
            Y, treated, control, duration, starts, estimator=estimator, alpha=alpha, seed=seed
        )


def _power_task_inner(
    Y, treated, control, duration, starts, effects, estimator, alpha, power_target, names, seed
):
    return candidate_power(
        Y,
        treated,
        control,
        duration,
        starts,
        effects,
        estimator=estimator,
        alpha=alpha,
        power_target=power_target,
        names=names,
        seed=seed,
    )


def fit_quality(
    Y: np.ndarray, treated: Sequence[int], control: Sequence[int], estimator
) -> tuple[dict, np.ndarray]:
    """Pre-period fit of the treated average on the whole history; (metrics, synthetic series)."""
    est = clone(estimator).fit(Y[:, treated], Y[:, control], None)
    y = Y[:, treated].mean(axis=1)
    synth = np.asarray(est.counterfactual_pre_, dtype=float)
    resid = y - synth
    sst = float(np.sum((y - y.mean()) ** 2))
    out = {
        "r2": float(1 - np.sum(resid**2) / sst) if sst > 0 else None,
        "mape": float(np.mean(np.abs(resid) / np.maximum(np.abs(y), 1e-12))),
        "scaled_l2_imbalance": float(getattr(est, "scaled_l2_imbalance_", np.nan)),
    }
    return out, synth


def _rank(designs: list[Design], use_investment: bool, alpha: float) -> list[Design]:
    """GeoLift-style composite rank: sum of the ranks on MDE, pre-period fit, investment and excess false positives.

    Designs that reach the power target within budget come first; among them the
    composite decides, ties broken by the MDE.
    """
    if not designs:
        return designs
    mde = np.array([d.mde if d.mde is not None else np.inf for d in designs])
    fit = np.array(
        [
            d.fit.get("scaled_l2_imbalance")
            if np.isfinite(d.fit.get("scaled_l2_imbalance") or np.nan)
            else 1 - (d.fit.get("r2") or 0.0)
            for d in designs
        ]
    )
    # Over-rejection on history counts against a design even below the cap: its power is partly false positives.
    fpr = np.array([max(d.null_rejection_rate - alpha, 0.0) for d in designs])
    score = _ranks(mde) + _ranks(fit) + _ranks(fpr)
    if use_investment:
        inv = np.array([d.investment if d.investment is not None else np.inf for d in designs])
        score = score + _ranks(inv)
    ok = np.array([d.feasible for d in designs])
    order = np.lexsort((mde, score, ~ok))
    ranked = [designs[i] for i in order]
    for r, d in enumerate(ranked, start=1):
        d.rank = r
    return ranked


def _ranks(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(x, method="average")


def design_experiment(
    panel: Panel,
    *,
    n_treated: tuple[int, int] = (2, 5),
    treated_share: tuple[float, float] | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    durations: Sequence[int] | None = None,
    effect_sizes: Sequence[float] = DEFAULT_EFFECTS,
    alpha: float = 0.1,
    power_target: float = 0.8,
    estimator: str = "sc",
    cost_per_incremental: float | None = None,
    incremental_per_spend: float | None = None,
    budget: float | None = None,
    n_cells: int = 1,
    n_windows: int | None = None,
    n_screen_windows: int = 4,
    n_finalists: int = 20,
    greedy_rounds: int = 1,
    n_null_windows: int = 100,
    claim_share: float = 1 / 3,
    method: str = "auto",
    max_exhaustive: int = 400,
    n_prescreen: int = 0,
    n_prescreen_keep: int = 40,
    min_pre: int | None = None,
    max_false_positive_rate: float | None = None,
    seed: int = 0,
    n_jobs: int = 1,
    scheduler: str | None = None,
    progress: bool = False,
) -> DesignResult:
    """Design a geo experiment by simulating the readout on history.

    For every candidate treated set and test length, effects from
    ``effect_sizes`` are injected into the treated geos over historical
    windows and read out with the readout's estimator and inference; the power
    curve, the false positive rate (at zero effect) and the MDE (the smallest
    lift detected with probability ``power_target``) follow. The MDE times the
    treated geos' usual outcome over the test is ``mde_incremental``; times
    ``cost_per_incremental`` (or divided by ``incremental_per_spend``) it is the
    investment the test needs.

    Parameters
    ----------
    panel : Panel
        The history the test is designed on.
    n_treated : (int, int), default=(2, 5)
        Fewest and most treated geos (per cell).
    treated_share : (float, float), optional
        Keep only treated sets whose share of the total outcome over the
        history lies in this range (e.g. ``(0.05, 0.2)``), on top of ``n_treated``.
    include, exclude : sequence of str
        Geos that must be treated (in cell 1), and geos never treated (they stay donors).
    durations : sequence of int, optional
        Test lengths in periods. Default: chosen from the history's length and
        frequency (:func:`experiments.design_defaults.choose_settings`: 14, 21
        and 28 days, or 4, 6 and 8 weeks, those that leave at least 10
        windows), recorded in ``settings["chosen"]``.

        .. versionchanged:: issue 20
           Was ``(14, 21, 28)`` whatever the history.
    effect_sizes : sequence of float
        Relative lifts for the power curve (0 to 0.25 by 0.025 by default).
    alpha : float, default=0.1
        Level of the readout's two-sided test (its confidence is ``1 - alpha``).
    power_target : float, default=0.8
    estimator : str, default="sc"
        Any readout estimator name.
    cost_per_incremental, incremental_per_spend : float, optional
        One of them turns the MDE into an investment.
    budget : float, optional
        Largest investment; designs above it are ranked last, and none within it is an error.
    n_cells : int, default=1
        Disjoint test cells, each with its own treated set and power.
    n_windows : int, optional
        Historical windows simulated per finalist design (default 30, or all
        the search's windows when fewer); more than the history holds is an error.
    n_screen_windows : int, default=4
        Windows per candidate in the screening stage.
    n_finalists : int, default=20
        Candidates (treated set and length) simulated on all windows.
    greedy_rounds : int, default=1
        Rounds of greedy local search (swap, add or drop one geo) around the
        best screened design; 0 switches it off.
    n_null_windows : int, default=100
        Windows on which each finalist's rejection rate with no effect is
        measured (every admissible start, thinned to this many); it decides
        the false-positive cap and the ranking term. 0 uses the power windows.
    claim_share : float, default=1/3
        Share of the admissible windows (the latest, every one of them) held
        out of the search: candidates are screened, simulated and ranked on
        the earlier windows, and the recommended design's power, MDE and false
        positive rate are measured on the held-out ones, so that picking the
        best of many noisy estimates does not make its claim optimistic (the
        winner's curse). 0, or a history too short for 4 windows on each side,
        makes the claim on the search's windows (``held_out`` false).

        .. versionchanged:: issue 20
           Was 0.
    method : str, default="auto"
        Candidate generation (:func:`experiments.candidates.generate_candidates`);
        ``"screen"`` uses only the prescreened sets (``n_prescreen``).
    n_prescreen : int, default=0
        Stratified treated sets drawn and scored all at once by the vectorised
        screen (:mod:`experiments.design_screen`) before any readout is
        simulated; for large panels and large treated sets.
    n_prescreen_keep : int, default=40
        Best prescreened sets (per test length) that go on to the readout's screening.
    max_exhaustive : int, default=400
        Largest number of treated sets enumerated exhaustively.
    min_pre : int, optional
        Shortest pre-period of a simulated window (default four test lengths, at least 28).
    max_false_positive_rate : float, optional
        Designs whose readout rejects more often than this with no effect
        injected (default ``alpha + 0.05``) over-reject on history: their power
        is not to be trusted, and they are ranked after the others.
    seed : int, default=0
    n_jobs : int, default=1
        joblib workers.
    scheduler : str, optional
        Address of a Dask scheduler; the search then runs on that cluster.
    progress : bool, default=False
        Show a progress bar on stderr.

    Returns
    -------
    DesignResult

    Raises
    ------
    ConfigError
        Constraints no design can meet: a geo both included and excluded,
        more treated geos than exist, a test longer than the history allows,
        a budget below the cheapest design, both cost priors given.
    DataError
        An included or excluded geo that is not in the panel.
    """
    est = make_estimator(estimator)
    max_fpr = float(alpha + 0.05 if max_false_positive_rate is None else max_false_positive_rate)
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be between 0 and 1, got {alpha}")
    if not 0 < power_target < 1:
        raise ConfigError(f"power_target must be between 0 and 1, got {power_target}")
    if cost_per_incremental is not None and incremental_per_spend is not None:
        raise ConfigError("give either cost_per_incremental or incremental_per_spend, not both")
    if budget is not None and cost_per_incremental is None and incremental_per_spend is None:
        raise ConfigError(
            "a budget cap needs cost_per_incremental or incremental_per_spend to price the designs"
        )
    effects = np.unique(np.asarray(list(effect_sizes), dtype=float))
    if len(effects) == 0 or not np.isfinite(effects).all() or np.all(effects == 0):
        raise ConfigError("effect sizes must include at least one non-zero finite lift")
    include = list(dict.fromkeys(str(g) for g in include))
    exclude = list(dict.fromkeys(str(g) for g in exclude))
    both = sorted(set(include) & set(exclude))
    if both:
        raise ConfigError(f"geo '{both[0]}' is both included and excluded")
    panel.check_geos(include, "included")
    panel.check_geos(exclude, "excluded")
    geos = list(panel.geos)
    check_constraints(geos, n_treated, include, exclude, n_cells=n_cells)
    Y = panel.wide().to_numpy(dtype=float)
    T, G = Y.shape
    plan = choose_settings(
        T,
        panel.period_name,
        durations=durations,
        n_windows=n_windows,
        min_pre=min_pre,
        estimator_min=est.min_pre_periods,
        days_per_period=period_days(panel.dates),
    )
    durations = plan.durations
    claim, select, select_all, held_out = split_windows(T, plan, claim_share)

    if method == "screen" and n_prescreen < 1:
        raise ConfigError("candidate method 'screen' needs n_prescreen >= 1 (--prescreen N)")
    candidates = (
        []
        if method == "screen"
        else generate_candidates(
            Y,
            geos,
            n_treated=n_treated,
            include=include,
            exclude=exclude,
            method=method,
            max_exhaustive=max_exhaustive,
            seed=seed,
        )
    )
    if n_prescreen > 0:
        candidates = candidates + [
            c
            for c in _prescreen(
                Y,
                geos,
                n_prescreen,
                n_prescreen_keep,
                n_treated,
                include,
                exclude,
                select_all,
                alpha,
                power_target,
                seed,
            )
            if c not in set(candidates)
        ]
    if n_cells > 1 and include and method != "screen":
        # Cells after the first need not contain the included geos (they cannot: cells are disjoint).
        more = generate_candidates(
            Y,
            geos,
            n_treated=n_treated,
            include=(),
            exclude=exclude + include,
            method=method,
            max_exhaustive=max_exhaustive,
            seed=seed,
        )
        candidates = candidates + [c for c in more if c not in set(candidates)]
    index = {g: i for i, g in enumerate(geos)}
    if treated_share is not None:
        lo_s, hi_s = (float(x) for x in treated_share)
        if not 0 <= lo_s <= hi_s <= 1:
            raise ConfigError(
                f"treated share range {lo_s}..{hi_s} must lie within 0..1 with low <= high"
            )
        totals = Y.sum(axis=0) / Y.sum()
        shares = {c: float(sum(totals[index[g]] for g in c)) for c in candidates}
        kept = [c for c in candidates if lo_s <= shares[c] <= hi_s]
        if not kept:
            near = min(shares.values(), key=lambda x: min(abs(x - lo_s), abs(x - hi_s)))
            raise ConfigError(
                f"no treated set of {n_treated[0]}..{n_treated[1]} geos has a share of '{panel.y}' "
                f"within {lo_s:.1%}..{hi_s:.1%} (closest {near:.1%})"
            )
        candidates = kept

    def control_of(treated: Sequence[str], also_out: Sequence[str] = ()) -> list[int]:
        skip = set(treated) | set(also_out)
        return [i for i, g in enumerate(geos) if g not in skip]

    def evaluate(
        pairs: list[tuple[tuple[str, ...], int]],
        windows: dict[int, np.ndarray],
        desc: str,
        also_out: Sequence[str] = (),
    ) -> list[PowerResult]:
        tasks = [
            (
                Y,
                [index[g] for g in t],
                control_of(t, also_out),
                d,
                windows[d],
                effects,
                estimator,
                alpha,
                power_target,
                geos,
                seed,
            )
            for t, d in pairs
        ]
        return _run_tasks(
            tasks, _power_task, n_jobs=n_jobs, scheduler=scheduler, progress=progress, desc=desc
        )

    pairs = [(t, d) for t in candidates for d in durations]
    screen_windows = {
        d: s[
            np.unique(
                np.round(np.linspace(0, len(s) - 1, min(n_screen_windows, len(s)))).astype(int)
            )
        ]
        for d, s in select.items()
    }
    if len(pairs) > n_finalists:
        screened = evaluate(pairs, screen_windows, "screening")

        def key(r: PowerResult) -> tuple:
            return (
                r.false_positive_rate > max_fpr,
                r.mde if r.mde is not None else np.inf,
                -r.power[-1],
            )

        if greedy_rounds and method != "exhaustive":
            similarity = similarity_matrix(Y)
            # Greedy local search: one-geo moves (to similar geos) around the best screened design.
            seen = set(pairs)
            for _ in range(greedy_rounds):
                top = sorted(range(len(pairs)), key=lambda i: key(screened[i]))[:1]
                moves = [
                    (nb, pairs[i][1])
                    for i in top
                    for nb in neighbours(
                        pairs[i][0],
                        geos,
                        n_treated=n_treated,
                        include=include,
                        exclude=exclude,
                        similarity=similarity,
                    )
                ]
                moves = list(dict.fromkeys(m for m in moves if m not in seen))
                if not moves:
                    break
                seen.update(moves)
                pairs = pairs + moves
                screened = screened + evaluate(moves, screen_windows, "greedy search")
        order = sorted(range(len(pairs)), key=lambda i: key(screened[i]))
        finalists = [pairs[i] for i in order[:n_finalists]]
    else:
        finalists = pairs
    full = evaluate(finalists, select, "simulating")

    # The rejection rate with no effect, on many more windows than the power curve (it needs one
    # lift per window): selecting small MDEs on few windows otherwise favours over-rejecting sets.
    # Only on the search's own part of the history: the held-out windows must not choose the design.
    null_starts = {d: _thin(select_all[d], n_null_windows) for d in durations}
    # Where the null windows are the power windows already simulated (short histories), their rate is reused.
    fresh = [
        i
        for i, (t, d) in enumerate(finalists)
        if n_null_windows and not np.array_equal(np.sort(null_starts[d]), np.sort(select[d]))
    ]
    null_tasks = [
        (
            Y,
            [index[g] for g in finalists[i][0]],
            control_of(finalists[i][0]),
            finalists[i][1],
            null_starts[finalists[i][1]],
            estimator,
            alpha,
            seed,
        )
        for i in fresh
    ]
    done = dict(
        zip(
            fresh,
            _run_tasks(
                null_tasks,
                _null_task,
                n_jobs=n_jobs,
                scheduler=scheduler,
                progress=progress,
                desc="false positives",
            ),
        )
    )
    nulls = [
        done.get(i, full[i].false_positive_rate if n_null_windows else None)
        for i in range(len(finalists))
    ]
    fits: dict[tuple[str, ...], tuple[dict, np.ndarray]] = {}
    designs = []
    for r, nr in zip(full, nulls):
        if r.treated not in fits:
            fits[r.treated] = fit_quality(
                Y, [index[g] for g in r.treated], control_of(r.treated), est
            )
        designs.append(
            _price(
                Design(r, fits[r.treated][0], max_false_positive_rate=max_fpr, null_rate=nr),
                cost_per_incremental,
                incremental_per_spend,
                budget,
            )
        )
    priced = cost_per_incremental is not None or incremental_per_spend is not None
    ranked = _rank(designs, priced, alpha)
    if budget is not None:
        costs = [d.investment for d in ranked if d.investment is not None]
        if costs and not any(d.within_budget for d in ranked):
            cheapest = min(costs)
            raise ConfigError(
                f"budget {budget:,.0f} is below the cheapest design's investment ({cheapest:,.0f}); "
                "raise --budget or allow other geos or lengths"
            )

    cells = _choose_cells(ranked, n_cells, include)
    control_names = [g for g in geos if g not in {x for c in cells for x in c.treated}]
    # Each cell is measured on the claim windows, against the geos in no cell (as cells are read out).
    all_treated = [g for c in cells for g in c.treated]
    search_cells = cells
    again = evaluate(
        [(c.treated, c.duration) for c in cells], claim, "measuring", also_out=all_treated
    )
    cells = [
        _price(
            Design(r, c.fit, rank=c.rank, max_false_positive_rate=max_fpr, null_rate=c.null_rate),
            cost_per_incremental,
            incremental_per_spend,
            budget,
        )
        for r, c in zip(again, cells)
    ]
    for c in (*ranked, *cells):
        c.period, c.period_days = plan.period, plan.period_days
    best = cells[0]
    t_idx = [index[g] for g in best.treated]
    _, synth = fit_quality(Y, t_idx, [index[g] for g in control_names], est)
    fit_series = {
        "dates": [d.date().isoformat() for d in panel.dates],
        "observed": Y[:, t_idx].mean(axis=1).tolist(),
        "synthetic": synth.tolist(),
    }
    by_duration = []
    for d in durations:
        ds = [c for c in ranked if c.duration == d and c.mde is not None]
        if ds:
            top = min(ds, key=lambda c: c.mde)
            by_duration.append(
                {
                    "duration_days": plan.days(d),
                    "duration_periods": d,
                    "mde": top.mde,
                    "mde_se": top.power.mde_se,
                    "mde_incremental": top.power.mde_incremental,
                    "investment": top.investment,
                    "treated": list(top.treated),
                }
            )
        else:
            by_duration.append(
                {
                    "duration_days": plan.days(d),
                    "duration_periods": d,
                    "mde": None,
                    "mde_se": None,
                    "mde_incremental": None,
                    "investment": None,
                    "treated": None,
                }
            )
    settings = {
        "n_treated": list(n_treated),
        "treated_share": None if treated_share is None else list(treated_share),
        "include": include,
        "exclude": exclude,
        "durations": durations,
        "effect_sizes": effects.tolist(),
        "cost_per_incremental": cost_per_incremental,
        "incremental_per_spend": incremental_per_spend,
        "budget": budget,
        "n_cells": n_cells,
        "n_windows": plan.n_windows,
        "n_screen_windows": n_screen_windows,
        "n_finalists": n_finalists,
        "greedy_rounds": greedy_rounds,
        "method": method,
        "seed": seed,
        "max_false_positive_rate": max_fpr,
        "n_periods": T,
        "n_geos": G,
        "claim_share": claim_share,
        "held_out": held_out,
        "n_prescreen": n_prescreen,
        "n_prescreen_keep": n_prescreen_keep if n_prescreen else 0,
        "chosen": plan.to_dict(),
        "windows": {
            str(d): [panel.dates[int(s)].date().isoformat() for s in st] for d, st in select.items()
        },
        "claim_windows": {
            str(d): [panel.dates[int(s)].date().isoformat() for s in st] for d, st in claim.items()
        },
    }
    return DesignResult(
        panel.y,
        estimator,
        float(alpha),
        float(power_target),
        cells,
        control_names,
        ranked,
        len(pairs),
        settings,
        fit_series,
        by_duration,
        plan=plan,
        held_out=held_out,
        search_cells=search_cells,
    )


def _prescreen(
    Y: np.ndarray,
    geos: list[str],
    n: int,
    keep: int,
    n_treated: tuple[int, int],
    include: Sequence[str],
    exclude: Sequence[str],
    windows: dict[int, np.ndarray],
    alpha: float,
    power_target: float,
    seed: int,
) -> list[tuple[str, ...]]:
    """The ``keep`` best of ``n`` stratified treated sets by the vectorised screen, for each test length."""
    index = {g: i for i, g in enumerate(geos)}
    masks = stratified_masks(
        Y.mean(axis=0),
        n,
        n_treated,
        include=[index[g] for g in include],
        exclude=[index[g] for g in exclude],
        seed=seed,
    )
    out: dict[tuple[str, ...], None] = {}
    for d, st in windows.items():
        score = screen_mde(
            Y[: int(st.max()) + d], masks, st, d, alpha=alpha, power_target=power_target
        )
        for i in np.argsort(score, kind="stable")[:keep]:
            out[tuple(geos[j] for j in np.flatnonzero(masks[i]))] = None
    return list(out)


#: Fewest windows on either side of the split between search and claim.
MIN_SPLIT_WINDOWS = 4


def _thin(starts: np.ndarray, n: int) -> np.ndarray:
    """``n`` of the starts, spread evenly (all of them if fewer)."""
    if len(starts) <= n:
        return starts
    return starts[np.unique(np.round(np.linspace(0, len(starts) - 1, max(n, 1))).astype(int))]


def split_windows(
    n_periods: int, plan: DesignSettings, claim_share: float
) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray], dict[int, np.ndarray], bool]:
    """Windows that choose the design and later windows that measure the chosen one.

    The latest ``claim_share`` of the admissible window starts, every one of
    them, are held out of the search: the recommended design's power, MDE and
    false positive rate are measured there. The MDE of the best of many
    candidates measured on the windows that picked it is biased low (the
    winner's curse); measured on windows that did not pick it, it is not.
    The earlier starts, thinned to ``plan.n_windows``, run the search.

    Returns ``(claim, search, search_all, held_out)``; when either side would
    have fewer than :data:`MIN_SPLIT_WINDOWS` windows for some test length
    (or ``claim_share`` is 0) nothing is held out, the claim is made on the
    search windows and ``held_out`` is False.
    """
    claim, select, select_all = {}, {}, {}
    held_out = claim_share > 0
    every = {
        d: simulation_windows(n_periods, d, n_windows=n_periods, min_pre=plan.min_pre[d])
        for d in plan.durations
    }
    ks = {
        d: int(np.ceil(len(st) * claim_share)) if claim_share > 0 else 0 for d, st in every.items()
    }
    if any(k < MIN_SPLIT_WINDOWS or len(every[d]) - k < MIN_SPLIT_WINDOWS for d, k in ks.items()):
        held_out = False
    for d, st in every.items():
        k = ks[d] if held_out else 0
        select_all[d] = st[k:]
        select[d] = _thin(st[k:], plan.n_windows)
        claim[d] = st[:k] if held_out else select[d]
    return claim, select, select_all, held_out


def _price(d: Design, cpi: float | None, ips: float | None, budget: float | None) -> Design:
    inc = d.power.mde_incremental
    if inc is not None and (cpi is not None or ips is not None):
        d.investment = float(abs(inc) * cpi) if cpi is not None else float(abs(inc) / ips)
    d.within_budget = budget is None or (d.investment is not None and d.investment <= budget)
    return d


def _choose_cells(ranked: list[Design], n_cells: int, include: Sequence[str] = ()) -> list[Design]:
    """The best design holding the included geos, then the best-ranked disjoint designs of its length."""
    first = [d for d in ranked if set(include) <= set(d.treated)]
    if not first:
        raise DataError("no candidate design could be evaluated")
    cells = [first[0]]
    used = set(cells[0].treated)
    for d in ranked:
        if len(cells) == n_cells:
            break
        if d.duration == cells[0].duration and not used & set(d.treated):
            cells.append(d)
            used |= set(d.treated)
    if len(cells) < n_cells:
        raise ConfigError(
            f"only {len(cells)} disjoint treated set(s) of {cells[0].duration} periods among the "
            f"{len(ranked)} simulated designs; ask for fewer cells or allow more geos"
        )
    return cells


def evaluate_design(
    panel: Panel,
    treated: Sequence[str],
    duration: int,
    *,
    effect_sizes: Sequence[float] = DEFAULT_EFFECTS,
    alpha: float = 0.1,
    power_target: float = 0.8,
    estimator: str = "sc",
    cost_per_incremental: float | None = None,
    incremental_per_spend: float | None = None,
    n_windows: int = 30,
    min_pre: int | None = None,
    max_false_positive_rate: float | None = None,
    claim_share: float = 0.0,
    seed: int = 0,
) -> Design:
    """Simulate one given design (e.g. one proposed elsewhere) exactly as :func:`design_experiment` does.

    With ``claim_share > 0`` the design is simulated on the windows
    :func:`design_experiment` holds out of its search (the latest
    ``claim_share`` of them, every one), as its recommended design's claim is;
    otherwise on ``n_windows`` windows spread over the whole history.

    Returns a :class:`Design` with rank 0 (unranked).
    """
    est = make_estimator(estimator)
    treated = panel.check_geos(list(treated), "treated")
    geos = list(panel.geos)
    Y = panel.wide().to_numpy(dtype=float)
    T, G = Y.shape
    plan = choose_settings(
        T,
        panel.period_name,
        durations=[int(duration)],
        n_windows=None,
        min_pre=min_pre,
        estimator_min=est.min_pre_periods,
        days_per_period=period_days(panel.dates),
    )
    plan.n_windows = n_windows
    claim, select, _, held = split_windows(T, plan, claim_share)
    starts = claim[int(duration)] if held else _thin(select[int(duration)], n_windows)
    t_idx = [geos.index(g) for g in treated]
    c_idx = [i for i in range(G) if i not in t_idx]
    effects = np.unique(np.asarray(list(effect_sizes), dtype=float))
    r = candidate_power(
        Y,
        t_idx,
        c_idx,
        int(duration),
        starts,
        effects,
        estimator=estimator,
        alpha=alpha,
        power_target=power_target,
        names=geos,
        seed=seed,
    )
    max_fpr = float(alpha + 0.05 if max_false_positive_rate is None else max_false_positive_rate)
    d = Design(
        r,
        fit_quality(Y, t_idx, c_idx, est)[0],
        max_false_positive_rate=max_fpr,
        period=plan.period,
        period_days=plan.period_days,
    )
    return _price(d, cost_per_incremental, incremental_per_spend, None)
