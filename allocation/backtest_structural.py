"""The closed loop on the product's own calibration: the structural model, and tests chosen by their value.

:class:`StructuralLoop` is the daily loop (:class:`allocation.backtest_policies.DailyLoop`: weekly
readouts and recalibration, daily re-plans within the guardrail, every test in the loop's registry)
with the product's default calibration, :class:`allocation.structural.StructuralModel` refitted every
week on the panel so far and every lift read out, and one of three ways to spend the test budget:

* ``"voi"`` -- each week the test :func:`allocation.next_test.propose_tests` ranks first (expected value
  of sample information for the guardrailed plan, net of the test's cost) among go-dark tests of the
  same length and number of markets as the round-robin's, on the markets no other test occupies;
* ``"design"`` -- round-robin: next channel, next cluster, markets from the design module (as the
  daily loop);
* ``"none"`` -- no test beyond the battery before the horizon.

The structural model writes one Hill curve per channel and market whose coefficient and
half-saturation are the cluster's times the market's size; spread over a cluster's markets by size (as
the backtest spreads a line's spend), the cluster's curve is the Hill curve with the summed
coefficient and the summed half-saturation, exactly (:func:`cluster_curves`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from allocation.backtest_policies import DailyLoop
from allocation.backtest_setting import Setting, _date, panel_before
from allocation.backtest_structural_fit import (  # noqa: F401  (re-exported: their import path)
    cluster_curves,
    expected_cluster_curves,
    fit_structural,
)
from allocation.curves import CurveSet
from allocation.next_test import INTENSITIES, propose_tests
from allocation.structural import StructuralModel
from causal.errors import ConfigError

# The weekly proposal's settings: fewer draws, readouts and market sets than the CLI's defaults keep a
# proposal a few seconds on 50 markets (26 of them a half-year); the design search runs on recent history.
VOI_OPTIONS = {"max_draws": 60, "n_outcomes": 8, "n_sets": 2, "n_windows": 6}
VOI_HISTORY_DAYS = 200
# The VOI proposer's default test intensities: a go-dark measures a channel's average return from
# zero, a half cut and a heavy-up its return near current spend, where the guardrailed plan moves
# (docs/backtest.md, "Tests that measure marginal returns": 47.4% -> 66.8% of the oracle's gain).
VOI_INTENSITIES = ("go-dark", "half", "heavy-up")


class StructuralLoop(DailyLoop):
    """The daily loop calibrated by the structural model, with tests chosen by value, in turn, or none.

    Parameters
    ----------
    proposer : {"voi", "design", "random", "none"}, default="voi"
        How each week's test is chosen (module docstring). Every proposer runs the same number of
        go-dark tests of the same length on the same number of markets (equal test budget).
    n_draws : int, default=100
        Posterior draws of each weekly fit.
    plan_on : {"draws", "mean"}, default="draws"
        Plan on each line's expected response over the posterior draws
        (:func:`expected_cluster_curves`), or on the point curves (the posterior mean coefficient at
        the mode's shape).
    voi_options : dict, optional
        Options of :func:`allocation.next_test.propose_tests` (default :data:`VOI_OPTIONS`).
    intensities : tuple of {"go-dark", "half", "heavy-up"}, optional
        The spend changes the VOI proposer chooses among (default all three; same length and
        number of markets for every one: equal test budget), or the round-robin's in turn (default
        go-dark only; :class:`DailyLoop`). A go-dark measures a channel's average return from
        zero, a half cut or a heavy-up its return near current spend, where the plan moves.
    name : str, optional
    **kwargs
        :class:`DailyLoop`'s ``max_change``, ``test_days``, ``test_share``, ``audit``, and
        ``replicate_surprises`` (False here by default; not with the VOI proposer).
    """

    PROPOSERS = ("voi", "design", "random", "none")

    def __init__(
        self,
        *,
        proposer: str = "voi",
        n_draws: int = 100,
        plan_on: str = "draws",
        voi_options: dict | None = None,
        intensities: tuple[str, ...] | None = None,
        name: str | None = None,
        **kwargs,
    ) -> None:
        kwargs.setdefault("average_weeks", 1)
        # The figures of issue 16 were measured without replications; the VOI proposer picks every
        # test itself, so it has no slot to give a replication.
        kwargs.setdefault("replicate_surprises", False)
        if proposer == "voi" and kwargs["replicate_surprises"]:
            raise ConfigError("replicate_surprises needs a round-robin proposer, not 'voi'")
        if intensities is None:
            intensities = VOI_INTENSITIES if proposer == "voi" else ("go-dark",)
        super().__init__(proposer=proposer, refit_every=7, intensities=intensities, **kwargs)
        label = {"voi": "VOI tests", "design": "round-robin tests", "random": "random tests"}
        self.name = name or f"structural loop, {label.get(proposer, 'no tests')}"
        self.n_draws = n_draws
        if plan_on not in ("mean", "draws"):
            raise ConfigError(f"plan_on must be 'mean' or 'draws', got {plan_on!r}")
        self.plan_on = plan_on
        self.voi_options = dict(VOI_OPTIONS if voi_options is None else voi_options)
        self.market_curves_: dict | None = None
        self.model_: StructuralModel | None = None
        self.proposals_: list[dict] = []

    # -- calibration ---------------------------------------------------------------------
    def fit(self, setting: Setting, frame: pd.DataFrame, day: int) -> StructuralModel:
        """The structural model on the panel before ``day`` and every lift read out by then."""
        return fit_structural(setting, frame, day, self.lifts_, n_draws=self.n_draws)

    def _recalibrate(self, day: int, setting: Setting, context: dict) -> dict:
        self.model_ = self.fit(setting, context["frame"](), day)
        self.market_curves_ = self.model_.to_curves()
        if self.plan_on == "draws":
            return expected_cluster_curves(self.market_curves_, setting)
        return cluster_curves(self.market_curves_)

    # -- the test proposal ------------------------------------------------------------
    def _propose(self, day: int, setting: Setting, context: dict) -> None:
        if self.proposer != "voi":
            return super()._propose(day, setting, context)
        w = setting.world
        first, last = setting.start + day, setting.start + day + self.test_days - 1
        if last >= setting.start + setting.days:
            return
        n_clusters = len(np.unique(w.cluster_of))
        k = max(1, int(w.n_geos / n_clusters * self.test_share + 1e-9))  # the round-robin's size
        busy = sorted(self._busy(w, first, last))
        frame = context["frame"]()
        dates = np.sort(frame["date"].unique())
        recent = frame[frame["date"] >= dates[max(0, day + setting.start - VOI_HISTORY_DAYS)]]
        try:
            prop = propose_tests(
                CurveSet.from_dict(self.market_curves_, source="weekly structural fit"),
                panel_before(setting, recent, day),
                exclude=busy,
                n_treated=(k, k),
                durations=(self.test_days,),
                intensities=self.intensities,
                max_change=self.max_change,
                seed=setting.seed + day,
                **self.voi_options,
            )
        except ConfigError:  # no free market set reaches the design's power: no test this week
            return
        best = prop.best
        intensity = next(n for n, m in INTENSITIES.items() if m == best.test.intensity)
        self.proposals_.append(
            {
                "day": _date(w, first),
                "channel": best.test.channel,
                "intensity": intensity,
                "value": best.value,
                "cost": best.cost,
                "net_value": best.net_value,
            }
        )
        self._register(
            {
                "channel": best.test.channel,
                "intensity": intensity,
                "multiplier": float(best.test.intensity),
                "cluster": None,
                "geos": sorted(best.test.markets),
                "first": first,
                "last": last,
                "start": _date(w, first),
                "end": _date(w, last),
                "proposed": _date(w, first),
                "proposer": "voi",
                "design_mde": None,  # the design module's MDE is a share; the planner's is in signups
                "design_power_at_mde": None,
                "mde_incremental": best.test.mde,
                "value_of_information": best.value,
                "net_value": best.net_value,
            }
        )

    # -- credit against the truth -------------------------------------------------------
    def credit(self, setting: Setting, plan: np.ndarray) -> pd.Series:
        """Each channel's credit over the panel to the horizon's end, over its true contribution.

        The model is refitted at the end on the whole panel and every test read out; the truth is
        the world's signups with the loop's spend minus those with the channel's spend switched off.
        """
        w = setting.world
        run = setting.run(plan, cuts=self.tests_)
        frame = w.panel(run)
        self._read_finished(setting.days, setting, {"frame": lambda: frame})
        model = self.fit(setting, frame, setting.days)
        total = run.signups[: setting.start + setting.days].sum()
        truth = {}
        for ch in w.channels:
            spend = {c: s.copy() for c, s in run.spend.items()}
            spend[ch][:] = 0.0
            truth[ch] = total - w.run(spend=spend).signups[: setting.start + setting.days].sum()
        est = model.contributions_.set_index("channel")["total"]
        return pd.Series({ch: float(est[ch] / truth[ch]) for ch in w.channels}, name=self.name)
