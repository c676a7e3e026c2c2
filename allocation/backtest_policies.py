"""The closed-loop backtest's policies: status quo, quarterly model, daily loop, oracle.

Each policy is one object with ``name`` and ``decide(day, setting, context) -> spend per line``; the
runner (:func:`allocation.backtest.backtest`) calls it once per horizon day.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from allocation.audit import AuditLog
from allocation.backtest_setting import (
    CLUSTERS,
    CONTROLS,
    QUARTER,
    WEEK,
    Setting,
    _curve_fn,
    _date,
    _design_test,
    _read,
    average_curves,
    best_allocation,
    cluster_mapping,
    panel_before,
    plan_lines,
)
from allocation.backtest_structural_fit import expected_cluster_curves, fit_structural
from allocation.calibration import Lift, calibrate
from allocation.calibration_lifts import sign_contradiction
from allocation.constraints import guardrail_box
from allocation.next_test import INTENSITIES
from allocation.response_model import ResponseModel
from allocation.structural_inputs import PRIOR_ON, SHAPE_PRIORS
from causal.errors import ConfigError
from causal.world import EXOGENOUS_CHANNELS, World
from experiments.registry import Registry


# -- models ---------------------------------------------------------------------------
def _fit(setting: Setting, frame: pd.DataFrame, day: int, pooling: float = 0.5) -> ResponseModel:
    return ResponseModel(
        controls=list(CONTROLS), holdout=0, clusters=cluster_mapping(setting.world), pooling=pooling
    ).fit(panel_before(setting, frame, day))


# Prior scale of the confounding bias (relative to the coefficient) of a channel whose spend is set by the
# media plan: planned budgets do not follow demand, so the observational fit of such a channel is trusted more
# than that of a channel whose spend follows demand (branded search follows queries, the case of Chen et al. 2018).
PLANNED_BIAS = 0.25


def confounding_prior(world: World) -> dict[str, float]:
    """``calibrate(bias_scale=...)`` per channel: 1 for demand-following spend, :data:`PLANNED_BIAS` for planned."""
    return {ch: (PLANNED_BIAS if ch in EXOGENOUS_CHANNELS else 1.0) for ch in world.channels}


# -- policies ---------------------------------------------------------------------------
class StatusQuo:
    """Fixed channel x market shares of the budget, every day."""

    name = "status quo"

    def decide(self, day: int, setting: Setting, context: dict) -> np.ndarray:
        return setting.status_quo.copy()


def true_curve_fns(setting: Setting) -> list:
    """The world's true steady-state curve of each line (direct plus the branded-query path)."""
    truth = {(c["name"], c["market"]): c for c in setting.world.true_curves()}
    fns = []
    for line in setting.lines:
        c = truth[line]
        direct = _curve_fn(c["response"])
        med = _curve_fn(c["mediated"]) if "mediated" in c else None
        fns.append((lambda x, d=direct, m=med: d(x) + m(x)) if med else direct)
    return fns


def guardrail_today(
    setting: Setting, plan: np.ndarray, day: int, max_change: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Today's box of the rolling guardrail (as the daily planner states it, from the last six days;
    the days before the horizon count as status quo) and yesterday's plan."""
    hist = np.vstack([np.tile(setting.status_quo, (WEEK, 1)), plan[:day]])[-(WEEK - 1) :]
    band = max_change * setting.status_quo
    lo, hi = guardrail_box(hist.T, 1, band * (1 - 1e-9))
    return np.maximum(lo[:, 0], 0.0), hi[:, 0], hist[-1]


class Oracle:
    """The best steady-state allocation on the world's true curves (direct plus mediated): the upper bound."""

    name = "oracle"

    def __init__(self) -> None:
        self.plan_: np.ndarray | None = None

    def decide(self, day: int, setting: Setting, context: dict) -> np.ndarray:
        if self.plan_ is None:
            self.plan_ = best_allocation(true_curve_fns(setting), setting.budget)
        return self.plan_.copy()


class GuardedOracle:
    """The oracle held to the daily loop's guardrail: each day the best allocation on the true curves
    inside the rolling 7-day box. What a loop that knew the truth could earn under the guardrail, so
    (oracle - this) is what the guardrail costs over the horizon and (this - a loop) what learning does."""

    name = "oracle within the guardrail"

    def __init__(self, *, max_change: float = 0.15) -> None:
        self.max_change = max_change
        self._fns: list | None = None

    def decide(self, day: int, setting: Setting, context: dict) -> np.ndarray:
        if self._fns is None:
            self._fns = true_curve_fns(setting)
        lo, hi, _ = guardrail_today(setting, context["plan"], day, self.max_change)
        return best_allocation(self._fns, setting.budget, lo, hi)


class QuarterlyModel:
    """Every quarter, refit the observational model (optionally calibrated on the battery) and re-plan.

    Parameters
    ----------
    calibrated : bool
        Calibrate the refitted model on the battery's lifts (:func:`allocation.calibration.calibrate`).
    max_step : float or None, default=None
        Trust region: each quarter a line's spend stays within ``[x / max_step, x * max_step]`` of the
        plan in force ``x`` (the status quo before the first quarter). None jumps straight to the
        model's optimum. Budget optimisers bound each channel around its historical spend for the same
        reason (e.g. Meridian's ``spend_constraint_lower/upper``): a fitted curve is only supported by
        data near the spend it was fitted on, and an experiment's lift near the spend it was run at.
    bias_scale : float or mapping channel -> float, optional
        Prior scale of each calibrated channel's confounding bias (``calibrate(bias_scale=...)``);
        :func:`confounding_prior` of the world when None.
    name : str, optional
    """

    def __init__(
        self,
        *,
        calibrated: bool,
        max_step: float | None = None,
        bias_scale: float | dict[str, float] | None = None,
        name: str | None = None,
    ) -> None:
        if max_step is not None and not max_step > 1:
            raise ConfigError(
                f"max_step must be > 1 (a factor of the current spend), got {max_step}"
            )
        self.calibrated, self.max_step, self.bias_scale = calibrated, max_step, bias_scale
        default = "quarterly calibrated" if calibrated else "quarterly observational"
        self.name = name or default
        self.plan_: np.ndarray | None = None

    def decide(self, day: int, setting: Setting, context: dict) -> np.ndarray:
        if day % QUARTER == 0:
            model = _fit(setting, context["frame"](), day)
            bias = confounding_prior(setting.world) if self.bias_scale is None else self.bias_scale
            curves = calibrate(
                model, setting.lifts if self.calibrated else [], bias_scale=bias, seed=setting.seed
            ).to_dict()
            lo = hi = None
            if self.max_step is not None:
                current = setting.status_quo if self.plan_ is None else self.plan_
                lo, hi = (
                    current / self.max_step,
                    np.minimum(current * self.max_step, setting.budget),
                )
            self.plan_ = plan_lines(setting, curves, setting.budget, lo, hi)
        return self.plan_.copy()


class DailyLoop:
    """Weekly tests, weekly recalibration, daily re-plans within the guardrail, every decision audited.

    Parameters
    ----------
    max_change : float, default=0.15
        Largest change of a line within any 7 days, as a share of its status-quo spend.
    test_days : int, default=21
        Length of each go-dark test.
    refit_every : int, default=28
        Days between refits of the response model (calibration is redone weekly on the reused fit).
    test_share : float, default=1/3
        Share of the tested cluster's markets that go dark in a test.
    proposer : {"design", "random", "none"}, default="design"
        Who picks the test's markets among the free ones of the cluster: the design module
        (:func:`experiments.design.design_experiment`, simulated power of the readout on the recent
        history, best design first) or a random draw; "none" runs no test (the battery's lifts only).
    bias_scale : float or mapping channel -> float, optional
        Prior scale of each calibrated channel's confounding bias; :func:`confounding_prior` when None.
    pooling : float, default=0.5
        The response model's prior sd of a cluster's coefficient deviation, relative to the global one
        (:class:`allocation.response_model.ResponseModel`).
    average_weeks : int, default=13
        Plan on the average response of the last ``average_weeks`` weekly calibrations (a quarter;
        fitted by one Hill curve per line, :func:`allocation.backtest_setting.average_curves`); 1
        plans on the week's own curves.
    average_models : bool, default=False
        Also fit the structural model (:class:`allocation.structural.StructuralModel`, with the same
        lifts, 60 posterior draws) each week, and plan on the equal-weight average of its line curves
        (the expected response over its draws, as
        :class:`allocation.backtest_structural.StructuralLoop` plans) and the response model's
        calibration, before the ``average_weeks`` average: model averaging over the two model classes
        (Draper 1995), whose errors differ. :func:`allocation.backtest.default_policies` turns it on
        for horizons of :data:`allocation.backtest.AVERAGE_FROM_DAYS` days or more, where it was measured.
    structural_weight : float, default=0.5
        With ``average_models``, the structural model's weight in that average (equal weights by
        default; 0.25 and 1 measured worse on seeds 0 and 3, docs/backtest.md, session 9).
    structural_prior_on : {"marginal_return", "coefficient"}, default="marginal_return"
        With ``average_models``, the structural model's ``prior_on``: the loop plans on curvature, and
        with the prior on the Hill coefficient the structural model gave programmatic a nearly
        straight curve on three worlds of four (docs/backtest.md, session 10); ``"coefficient"``
        is the loop before that.
    structural_shape_prior : {"meridian", "uniform"}, default="meridian"
        With ``average_models``, the structural model's ``shape_prior``: Meridian's default Hill
        priors (half-saturation near current spend, exponent 1) or every point of the shape grid
        equally likely (the loop before session 13). On a year of history the uniform grid's draws
        spread over straighter curves than the world's where the panel cannot tell curvature, and the
        loop then over-values the weakest-identified channel (programmatic) at current spend
        (docs/backtest.md, session 13).
    intensities : tuple of {"go-dark", "half", "heavy-up"}, default ("go-dark",)
        The round-robin's test intensities, in turn: the ``n``-th round of tests over every channel
        (one test a week, ``len(channels)`` weeks a round) runs ``intensities[n % len]``. A go-dark
        measures a channel's average return from zero to current spend, a half cut or a heavy-up
        its return near current spend, where the guardrailed plan moves.
    replicate_surprises : bool, default=True
        Hold back a readout that contradicts what a spend change can do (a cut whose interval lies
        wholly above zero, a heavy-up wholly below) and replicate its test on other markets of the
        cluster in the next week's slot; both readouts count once the replication is read. Such a
        readout is a rare draw of the readout's noise (under 5% at 90% intervals when the effect has
        the sign the test expects), and taken alone it can drain a line for the rest of the horizon
        (seed 10's branded search in EMEA, docs/backtest.md, session 14). A held readout whose
        replication never runs stays out of the calibration; the test carries a ``held`` note.
    audit : AuditLog, optional
    """

    name = "daily loop"
    PROPOSERS = ("design", "random", "none")

    def __init__(
        self,
        *,
        max_change: float = 0.15,
        test_days: int = 21,
        refit_every: int = 28,
        test_share: float = 1 / 3,
        bias_scale: float | dict[str, float] | None = None,
        proposer: str = "design",
        pooling: float = 0.5,
        average_weeks: int = 13,
        average_models: bool = False,
        structural_weight: float = 0.5,
        structural_prior_on: str = "marginal_return",
        structural_shape_prior: str = "meridian",
        intensities: tuple[str, ...] = ("go-dark",),
        replicate_surprises: bool = True,
        audit: AuditLog | None = None,
    ) -> None:
        unknown = [k for k in intensities if k not in INTENSITIES]
        if unknown or not intensities:
            raise ConfigError(
                f"intensities must be among {', '.join(INTENSITIES)}, got {list(intensities)}"
            )
        self.intensities = tuple(intensities)
        if int(average_weeks) < 1:
            raise ConfigError(f"average_weeks must be >= 1, got {average_weeks}")
        self.average_weeks = int(average_weeks)
        self.average_models = bool(average_models)
        if not 0 <= structural_weight <= 1:
            raise ConfigError(f"structural_weight must be in [0, 1], got {structural_weight}")
        self.structural_weight = float(structural_weight)
        if structural_prior_on not in PRIOR_ON:
            raise ConfigError(
                f"structural_prior_on must be one of {', '.join(PRIOR_ON)}, got {structural_prior_on!r}"
            )
        self.structural_prior_on = structural_prior_on
        if structural_shape_prior not in SHAPE_PRIORS:
            raise ConfigError(
                f"structural_shape_prior must be one of {', '.join(SHAPE_PRIORS)}, "
                f"got {structural_shape_prior!r}"
            )
        self.structural_shape_prior = structural_shape_prior
        self.calibrations_: list[dict] = []
        self.pooling = pooling
        if proposer not in self.PROPOSERS:
            raise ConfigError(
                f"proposer must be one of {', '.join(self.PROPOSERS)}, got {proposer!r}"
            )
        self.proposer = proposer
        if not 0 < test_share < 1:
            raise ConfigError(f"test_share must be in (0, 1), got {test_share}")
        self.max_change, self.test_days, self.refit_every, self.audit = (
            max_change,
            test_days,
            refit_every,
            audit,
        )
        self.test_share = test_share
        self.bias_scale = bias_scale
        self.tests_: list[dict] = []
        self.log_: list[dict] = []
        self.lifts_: list[Lift] = []
        self._curves = None
        self._model = None
        self._next_cluster = 0
        self.replicate_surprises = bool(replicate_surprises)
        self._held: dict[int, Lift] = {}
        self._to_replicate: list[int] = []
        # The loop's calendar is an experiment registry (in memory): free markets and the no-overlap rule
        # are the registry's own (no washout: a test's readout already leaves out every market another
        # test occupies during its window).
        self.registry_ = Registry("sqlite://")

    def decide(self, day: int, setting: Setting, context: dict) -> np.ndarray:
        w = setting.world
        t_abs = setting.start + day
        if day == 0:
            self.lifts_ = list(setting.lifts)
        if day % WEEK == 0:
            self._read_finished(day, setting, context)
            self.calibrations_.append(self._recalibrate(day, setting, context))
            recent = self.calibrations_[-self.average_weeks :]
            self._curves = recent[0] if len(recent) == 1 else average_curves(recent, setting)
            self._propose(day, setting, context)
        plan = context["plan"]
        lo, hi, yesterday = guardrail_today(setting, plan, day, self.max_change)
        try:
            x = plan_lines(setting, self._curves, setting.budget, lo, hi)
        except ConfigError:  # the budget cannot be met inside the box: hold yesterday's plan
            x = yesterday.copy()
        entry = {
            "day": _date(w, t_abs),
            "total_spend": float(x.sum()),
            "largest_move": float(np.max(np.abs(x - yesterday))),
            "tests_running": sum(t["first"] <= t_abs <= t["last"] for t in self.tests_),
        }
        self.log_.append(entry)
        if self.audit is not None:
            self.audit.record(
                command="backtest daily-loop",
                curves={"lines": [list(x) for x in setting.lines]},
                constraints={
                    "budget": setting.budget,
                    "max_change": self.max_change,
                    "lower": lo.tolist(),
                    "upper": hi.tolist(),
                },
                solution={
                    "status": "optimal",
                    "objective": "max_incremental",
                    "total_spend": float(x.sum()),
                    "spend": x.tolist(),
                    "day": entry["day"],
                },
            )
        return x

    def _recalibrate(self, day: int, setting: Setting, context: dict) -> dict:
        """The week's line curves (curves.json dict): the response model (refitted every
        ``refit_every`` days) calibrated on every lift read out inside the fitted panel."""
        frame = None
        if day % self.refit_every == 0 or self._model is None:
            frame = context["frame"]()
            self._model = _fit(setting, frame, day, self.pooling)
        fitted_to = self._model.dates_[-1].date().isoformat()  # lifts inside the fitted panel only
        bias = confounding_prior(setting.world) if self.bias_scale is None else self.bias_scale
        curves = calibrate(
            self._model,
            [lf for lf in self.lifts_ if lf.end <= fitted_to],
            bias_scale=bias,
            seed=setting.seed,
        ).to_dict()
        if not self.average_models:
            return curves
        frame = context["frame"]() if frame is None else frame  # one world run a week
        model = fit_structural(
            setting,
            frame,
            day,
            self.lifts_,
            n_draws=60,
            options={
                "prior_on": self.structural_prior_on,
                "shape_prior": self.structural_shape_prior,
            },
        )
        structural = expected_cluster_curves(model.to_curves(), setting)
        w = self.structural_weight
        return average_curves([curves, structural], setting, weights=(1 - w, w))

    def _propose(self, day: int, setting: Setting, context: dict) -> None:
        """One test a week: next channel, next cluster, the round's intensity, markets no other test
        uses meanwhile, chosen by the design module (or at random with ``proposer="random"``)."""
        w = setting.world
        first = setting.start + day
        last = first + self.test_days - 1
        if last >= setting.start + setting.days or self.proposer == "none":
            return
        ch = w.channels[(day // WEEK) % len(w.channels)]
        intensity = self.intensities[(day // WEEK // len(w.channels)) % len(self.intensities)]
        clusters = [c for c in range(4) if (w.cluster_of == c).any()]
        c = clusters[self._next_cluster % len(clusters)]
        self._next_cluster += 1
        busy = self._busy(w, first, last)
        # A replication takes the week's slot; the round-robin goes on as if it had run.
        replicating = self._to_replicate.pop(0) if self._to_replicate else None
        if replicating is not None:  # the same line and intensity, on other markets of its cluster
            held = self.tests_[replicating]
            ch, intensity, c = held["channel"], held["intensity"], CLUSTERS.index(held["cluster"])
            busy |= set(held["geos"])
        free = [g for g, cl in zip(w.geos, w.cluster_of) if cl == c and g not in busy]
        k = max(1, int(np.sum(w.cluster_of == c) * self.test_share + 1e-9))
        if len(free) < k:
            if replicating is not None:  # no room this week: the replication waits for the next
                self._to_replicate.insert(0, replicating)
            return
        design = None
        if self.proposer == "design":
            design = _design_test(
                context["frame"](), w, free, k, self.test_days, seed=setting.seed + day
            )
        if design is not None:
            geos = sorted(design["geos"])
        else:
            rng = np.random.default_rng([setting.seed, day])
            geos = sorted(rng.choice(free, size=k, replace=False).tolist())
        test = {
            "channel": ch,
            "intensity": intensity,
            "multiplier": INTENSITIES[intensity],
            "cluster": CLUSTERS[c],
            "geos": geos,
            "first": first,
            "last": last,
            "start": _date(w, first),
            "end": _date(w, last),
            "proposed": _date(w, first),
            "proposer": "random" if design is None else "design",
            "design_mde": None if design is None else design["mde"],
            "design_power_at_mde": None if design is None else design["power"],
        }
        if replicating is not None:
            test["replicates"] = replicating
        self._register(test)

    def _busy(self, world: World, first: int, last: int) -> set[str]:
        """Markets another test occupies between days ``first`` and ``last`` (the registry's rule)."""
        return self.registry_.busy_geos(_date(world, first), _date(world, last), washout_days=0)

    def _register(self, test: dict) -> None:
        """Register the test in the loop's registry, which refuses (ConflictError) any overlap."""
        self.registry_.add(
            f"loop-{len(self.tests_)}",
            cells=test["geos"],
            start=test["start"],
            end=test["end"],
            channel=test["channel"],
            washout_days=0,
        )
        self.tests_.append(test)

    def _read_finished(self, day: int, setting: Setting, context: dict) -> None:
        now = setting.start + day
        due = [t for t in self.tests_ if t["last"] < now and "incremental" not in t]
        if not due:
            return
        frame = context["frame"]()
        for t in due:
            lift = self._read_test(t, setting, context, frame)
            t["incremental"], t["incremental_ci"] = lift.incremental, list(lift.incremental_ci)
            observed = _test_spend(frame, t)
            if lift.spend_delta > observed:
                # A cut of a line the plan had already drained: the readout's spend change (from
                # the controls) is noise above the nothing there was to cut, which no curve can
                # take (calibration refuses it). The test taught nothing; it is kept, unused.
                t["unused"] = (
                    f"spend change {lift.spend_delta:,.0f} read out where {observed:,.0f} was spent"
                )
                continue
            if "replicates" in t:  # the replication is in: both readouts count
                self.lifts_.extend([self._held.pop(t["replicates"]), lift])
            elif self.replicate_surprises and (surprise := sign_contradiction(lift)):
                t["held"] = surprise
                i = self.tests_.index(t)
                self._held[i] = lift
                self._to_replicate.append(i)
            else:
                self.lifts_.append(lift)

    def _read_test(self, test: dict, setting: Setting, context: dict, frame: pd.DataFrame) -> Lift:
        """A finished test's readout on the panel so far, the markets no test occupied as controls."""
        busy = self._busy(setting.world, test["first"], test["last"])
        control = [g for g in setting.world.geos if g not in busy]
        return _read(setting.world, frame, test, control, setting.seed)


def _test_spend(frame: pd.DataFrame, test: dict) -> float:
    """The channel's spend in the test's markets and window, as the panel records it."""
    w = frame[frame["geo"].isin(test["geos"]) & frame["date"].between(test["start"], test["end"])]
    return float(w[f"spend_{test['channel']}"].sum())
