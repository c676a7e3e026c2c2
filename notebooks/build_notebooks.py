"""Write the three user notebooks (run: python notebooks/build_notebooks.py).

The notebooks are stored without outputs (small diffs); the tests execute them
top to bottom. Edit the cells here, not in the .ipynb files.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = """\
%matplotlib inline
import warnings
import matplotlib.pyplot as plt
import pandas as pd
warnings.simplefilter("ignore", FutureWarning)
pd.set_option("display.width", 140)
"""

DESIGN = [
    new_markdown_cell("""\
# Experiment design: which markets, how long, what lift we can see

We want to measure what connected TV (CTV) really adds. The plan is a **go-dark test**: switch CTV off in a
few markets for some weeks and compare them with a synthetic counterfactual built from the other markets.
Before we spend a cent, this notebook answers the questions the budget owner will ask:

* which markets should go dark, and for how long;
* the smallest lift the test can detect (the **minimum detectable effect**, MDE) with 80% power;
* how often the test would cry wolf when CTV does nothing (the **false positive rate**);
* what the test costs in signups given up.

We work on liftlab's simulated world, where the truth is known, so the claims can be checked."""),
    new_code_cell(SETUP + """
from causal.world import World
from causal.panel import load_panel
from experiments.design import design_experiment

world = World(seed=0)                       # 50 markets, two years, known truth
history = world.panel()
history = history[history["date"] <= "2025-09-30"]   # what we know before the test
panel = load_panel(history)
print(f"{len(panel.geos)} markets, {len(panel.dates)} days of history, channels: {', '.join(panel.channels)}")"""),
    new_markdown_cell("""\
## Search the candidate designs

Power is measured **by simulation on history**: for each candidate set of markets and test length, known
lifts are injected into many past windows and read out with exactly the estimator and inference the final
readout will use (synthetic control with conformal inference). The share of windows where the readout
rejects "no effect" is the power at that lift; at zero lift it is the false positive rate."""),
    new_code_cell("""\
design = design_experiment(
    panel,
    n_treated=(4, 6),
    durations=(21, 28),
    effect_sizes=(0.0, 0.02, 0.04, 0.06, 0.08, 0.10),
    alpha=0.1,
    power_target=0.8,
    n_windows=12,
    seed=0,
)
print(design.summary())"""),
    new_code_cell("""\
fig, ax = design.plot(show=False)
plt.show()"""),
    new_markdown_cell("""\
## The recommended design

The table below is what goes into the test plan: the markets, the duration, the MDE in relative and
absolute terms, and the measured false positive rate."""),
    new_code_cell("""\
d = design.to_dict()
print("treated:", ", ".join(d["treated"]))
print("duration (days):", d["duration_days"])
print(f"MDE: {d['mde']:.1%} of signups in the treated markets, about {d['mde_incremental']:,.0f} signups")
print(f"false positive rate at zero lift: {d['false_positive_rate']:.0%}")
pd.DataFrame(d["power_curve"])"""),
    new_markdown_cell("""\
## Check against the truth

In the simulated world we can ask what switching CTV off in these markets really does. If the true effect
is larger than the MDE, the design is adequate for CTV."""),
    new_code_cell("""\
from causal.world import Experiment
start = pd.Timestamp("2025-10-01")
end = start + pd.Timedelta(days=d["duration_days"] - 1)
truth = world.experiment_truth(Experiment("ctv", tuple(d["treated"]), str(start.date()), str(end.date()), 0.0))
print(f"true lift of a CTV go-dark in these markets: {truth['true_lift']:.1%} "
      f"({truth['true_incremental']:,.0f} signups, spend change {truth['spend_delta']:,.0f})")
print("detectable" if d["mde"] is not None and abs(truth["true_lift"]) >= d["mde"] else "below the MDE")"""),
    new_markdown_cell("""\
## Decision

Run the CTV go-dark in the recommended markets for the recommended length: the design detects effects at
its MDE 80% of the time and raises a false alarm at about the 10% rate we accepted. If the business
cannot afford the signups at risk, shorten the test only if the MDE at the shorter length (in the power
table) is still below the effect we expect."""),
]

READOUT = [
    new_markdown_cell("""\
# Lift readout: incremental signups, not total signups

A readout answers: how many signups did the treatment **cause** in the treated markets, out of how many we
observed, at what cost per incremental signup, and how sure are we. We first reproduce GeoLift's published
walkthrough, then read out a test run inside the simulated world, where the truth is known."""),
    new_code_cell(SETUP + """
from pathlib import Path
from causal.panel import load_panel
from experiments.readout import read_out

candidates = [Path("../tests/data/geolift/GeoLift_Test.csv"), Path("../../shared/data/geolift/GeoLift_Test.csv")]
geolift_path = next(p for p in candidates if p.exists())
geolift = load_panel(geolift_path, y="Y", geo_col="location")
r = read_out(geolift, ["chicago", "portland"], ("2021-04-01", "2021-04-15"), estimator="sc", confidence=0.9)
print(r.summary())"""),
    new_markdown_cell("""\
GeoLift's published figures for this test are an ATT of 155.6 signups per market per day, 4,667
incremental signups and a 5.4% lift with a p-value near 0.01. liftlab's synthetic control reproduces them
(the parity test in `tests/` holds it to 1%)."""),
    new_code_cell("""\
fig, ax = r.plot(show=False)
plt.show()
r.table"""),
    new_markdown_cell("""\
## A CTV go-dark inside the simulated world

Six markets switch CTV off for four weeks. The panel below is what an analyst would see; the world also
tells us the true incremental signups, which the analyst would never see."""),
    new_code_cell("""\
from causal.world import World, Experiment
world = World(seed=0)
test = Experiment("ctv", ("NA02", "NA05", "EM03", "EM07", "LA04", "AP02"), "2025-10-01", "2025-10-28", 0.0)
frame, truth = world.simulate([test])
panel = load_panel(frame)
ro = read_out(panel, list(test.geos), (test.start, test.end), channel="ctv", confidence=0.9, seed=0)
print(ro.summary())
t = truth["experiments"][0]
print(f"\\ntruth: incremental {t['true_incremental']:,.0f} signups for a spend change of {t['spend_delta']:,.0f}")"""),
    new_code_cell("""\
fig, ax = ro.plot(show=False)
plt.show()"""),
    new_markdown_cell("""\
## Total versus incremental

The table keeps the two apart: the treated markets still had tens of thousands of signups during the
test; the go-dark removed only the incremental part. Cost per incremental signup is the spend we saved
divided by the signups we lost: this, not cost per total signup, is what should price CTV."""),
    new_code_cell("""\
d = ro.to_dict()
pd.Series({k: d[k] for k in ("observed", "counterfactual", "incremental", "incremental_ci", "lift",
                             "p_value", "spend_delta", "cost_per_incremental")})"""),
    new_markdown_cell("""\
## Decision

CTV's go-dark cost signups in the treated markets, and the interval excludes zero: CTV is incremental.
The cost per incremental signup from this test goes into calibration (next notebook), where it corrects the
observational model's credit for CTV."""),
]

ALLOCATION = [
    new_markdown_cell("""\
# Calibrated allocation: from measured lifts to next month's budget

The observational model (a regression of signups on spend) over-credits branded search, whose spend follows
organic demand, and under-credits CTV, part of whose effect travels through branded searches. Two tests run
inside the simulated world measure the truth at one operating point each: a branded-search go-dark and a CTV
go-dark. We calibrate the response curves on them, compare the credit with the world's truth, and allocate
the budget on the calibrated curves under a 15% weekly guardrail."""),
    new_code_cell(SETUP + """
from causal.world import World, Experiment
from causal.panel import load_panel
from experiments.readout import read_out

world = World(seed=0)
brand = Experiment("brand_search", ("NA01", "NA03", "NA04", "NA06", "NA08", "NA10", "NA12", "LA01", "LA03", "LA05",
                                    "LA07", "EM01", "EM04", "EM06", "EM09", "EM11", "AP01", "AP03", "AP05", "AP07"),
                   "2025-10-01", "2025-11-25", 0.0, name="brand_go_dark")
ctv = Experiment("ctv", ("NA02", "NA05", "EM03", "EM07", "LA04", "AP02"), "2025-10-01", "2025-10-28", 0.0, name="ctv_go_dark")
frame, truth = world.simulate([brand, ctv])
panel = load_panel(frame)
readouts = [read_out(panel, list(e.geos), (e.start, e.end), channel=e.channel, seed=0) for e in (brand, ctv)]
for e, r in zip((brand, ctv), readouts):
    d, t = r.to_dict(), next(x for x in truth["experiments"] if x["channel"] == e.channel)
    print(f"{e.channel:<13} incremental {d['incremental']:>8,.0f} {d['incremental_ci']}  truth {t['true_incremental']:>8,.0f}")"""),
    new_markdown_cell("""\
## Fit the curves, then calibrate them on the lifts

Each lift enters the fit as a likelihood term on the curve's predicted incremental signups for exactly that
spend change, markets and window, carryover included."""),
    new_code_cell("""\
from allocation.calibration import Lift, calibrate
from allocation.mmm import ResponseModel
from causal.graph import default_graph, joint_controls, normalise

graph = normalise(default_graph(panel.channels, panel.y), panel.channels, panel.y)
model = ResponseModel(controls=joint_controls(graph, panel.channels, panel.covariates)).fit(panel)
result = calibrate(model, [Lift.from_dict(r.to_dict()) for r in readouts], seed=0)
print(result.summary())"""),
    new_code_cell("""\
curves = result.to_dict()
credit = {}
for c in curves["channels"]:
    before, after = credit.get(c["name"], (0.0, 0.0))
    credit[c["name"]] = (before + c["contribution"]["uncalibrated"], after + c["contribution"]["calibrated"])
table = pd.DataFrame(credit, index=["model before", "after calibration"]).T
table["truth"] = pd.Series(truth["contributions"])
table.round(0)"""),
    new_markdown_cell("""\
## Allocate on the calibrated curves

Same total budget as today; no line may move more than 15% of its current spend."""),
    new_code_cell("""\
from allocation.curves import CurveSet
from allocation.optimize import allocate

curve_set = CurveSet.from_dict(curves)
budget = sum(c["current_spend"] for c in curves["channels"])
plan = allocate(curve_set, budget=budget, max_change=0.15)
print(plan.summary())
plan.to_frame().groupby("name")[["current_spend", "spend", "incremental"]].sum().round(0)"""),
    new_code_cell("""\
fig, ax = plan.plot(show=False)
plt.show()"""),
    new_code_cell("""\
by_line = plan.to_frame().groupby("name")[["current_spend", "spend"]].sum()
shift = (by_line["spend"] / by_line["current_spend"] - 1).sort_values()
for ch in ("brand_search", "ctv"):
    print(f"{ch}: credit {table.loc[ch, 'model before']:,.0f} -> {table.loc[ch, 'after calibration']:,.0f} "
          f"(truth {table.loc[ch, 'truth']:,.0f})")
print("budget shift by channel:", ", ".join(f"{k} {v:+.0%}" for k, v in shift.items()))"""),
    new_markdown_cell("""\
## Decision

Calibration pulls branded search's credit from the observational model's many-fold over-statement down to
what its go-dark measured, and keeps CTV's credit where its own test put it. The plan then moves each line by
at most 15% toward the channels whose **calibrated marginal** return is highest: a channel's total credit
says nothing about where the next dollar works best. Re-plan weekly as new tests refine the curves; the next
tests should go to the channels whose calibrated curves are still the least certain (widest intervals in the
table above)."""),
]


def write(name: str, cells: list) -> None:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, HERE / name)


if __name__ == "__main__":
    write("experiment_design.ipynb", DESIGN)
    write("lift_readout.ipynb", READOUT)
    write("calibrated_allocation.ipynb", ALLOCATION)
