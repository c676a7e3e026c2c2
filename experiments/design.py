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

from collections.abc import Sequence

import numpy as np

from causal.base import make_estimator
from causal.errors import ConfigError
from causal.panel import Panel
from experiments.candidates import (
    check_constraints,
    generate_candidates,
    neighbours,
    similarity_matrix,
)
from experiments.design_defaults import choose_settings, period_days
from experiments.design_ranking import choose_cells, fit_quality, price, rank_designs
from experiments.design_result import CandidateDesign, DesignResult
from experiments.design_screen import screen_mde, stratified_masks
from experiments.design_tasks import null_task, power_task, run_tasks
from experiments.design_windows import MIN_SPLIT_WINDOWS, split_windows, thin_starts
from experiments.power import PowerResult, candidate_power
from experiments.readout_selection import set_selection_scale

__all__ = [
    "DEFAULT_EFFECTS",
    "MIN_SPLIT_WINDOWS",
    "CandidateDesign",
    "DesignResult",
    "design_experiment",
    "evaluate_design",
    "fit_quality",
    "split_windows",
]

DEFAULT_EFFECTS = tuple(np.round(np.arange(0.0, 0.2501, 0.025), 4))


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
        raise ConfigError("candidate method 'screen' needs n_prescreen >= 1")
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
        return run_tasks(
            tasks, power_task, n_jobs=n_jobs, scheduler=scheduler, progress=progress, desc=desc
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
    null_starts = {d: thin_starts(select_all[d], n_null_windows) for d in durations}
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
            run_tasks(
                null_tasks,
                null_task,
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
            price(
                CandidateDesign(
                    r, fits[r.treated][0], max_false_positive_rate=max_fpr, null_rate=nr
                ),
                cost_per_incremental,
                incremental_per_spend,
                budget,
            )
        )
    priced = cost_per_incremental is not None or incremental_per_spend is not None
    ranked = rank_designs(designs, priced, alpha)
    if budget is not None:
        costs = [d.investment for d in ranked if d.investment is not None]
        if costs and not any(d.within_budget for d in ranked):
            cheapest = min(costs)
            raise ConfigError(
                f"budget {budget:,.0f} is below the cheapest design's investment ({cheapest:,.0f}); "
                "raise the budget or allow other geos or lengths"
            )

    cells = choose_cells(ranked, n_cells, include)
    control_names = [g for g in geos if g not in {x for c in cells for x in c.treated}]
    # Each cell is measured on the claim windows, against the geos in no cell (as cells are read out).
    all_treated = [g for c in cells for g in c.treated]
    search_cells = cells
    again = evaluate(
        [(c.treated, c.duration) for c in cells], claim, "measuring", also_out=all_treated
    )
    # The registry reads a designed test out with the selection check, which widens the interval of
    # a set chosen for its calm history when the history is short (experiments.readout_selection):
    # the claim is that readout's, not the plain one's.
    donors = [index[g] for g in geos if g not in set(all_treated)]
    again = [_as_read_out(r, Y, [index[g] for g in r.treated], donors, est, seed) for r in again]
    cells = [
        price(
            CandidateDesign(
                r, c.fit, rank=c.rank, max_false_positive_rate=max_fpr, null_rate=c.null_rate
            ),
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


def _as_read_out(
    power: PowerResult, Y: np.ndarray, treated: list[int], donors: list[int], est, seed: int
) -> PowerResult:
    """The design's power as the registry's readout of it will have it (selection check on)."""
    factor = set_selection_scale(est, Y[:, treated], Y[:, donors], power.duration, seed=seed)
    return power.widened(factor) if factor > 1.0 else power


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
) -> CandidateDesign:
    """Simulate one given design (e.g. one proposed elsewhere) exactly as :func:`design_experiment` does.

    With ``claim_share > 0`` the design is simulated on the windows
    :func:`design_experiment` holds out of its search (the latest
    ``claim_share`` of them, every one), as its recommended design's claim is;
    otherwise on ``n_windows`` windows spread over the whole history.

    Returns a :class:`~experiments.design_result.CandidateDesign` with rank 0 (unranked).
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
    starts = claim[int(duration)] if held else thin_starts(select[int(duration)], n_windows)
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
    d = CandidateDesign(
        r,
        fit_quality(Y, t_idx, c_idx, est)[0],
        max_false_positive_rate=max_fpr,
        period=plan.period,
        period_days=plan.period_days,
    )
    return price(d, cost_per_incremental, incremental_per_spend, None)
