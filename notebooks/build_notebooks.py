"""Write the user notebooks (run: python notebooks/build_notebooks.py --execute).

The notebooks are stored executed, with their outputs and figures, so a reader
sees every number; tests/test_notebooks.py re-executes them and fails when a
cell tagged ``conclusion`` no longer prints what is stored. Every conclusion is
text built from computed values; markdown cells explain and never state a
result. Edit the cells here, not in the .ipynb files.
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
* whether the effect we expect is larger than what the test can see.

We work on liftlab's simulated world, where the truth is known, so the claims can be checked. Every number and
every conclusion below is printed by a cell from the results; the prose only explains."""),
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
## The planning assumption

The budget owner's question is whether a test can see the effect we *expect*. Our planning assumption, an input
and not a result, is the lift the go-dark should cause; the benchmark for it is the observational model's credit
for CTV (which under-states the upper funnel), so we take a round figure above it."""),
    new_code_cell("""\
EXPECTED_LIFT = 0.05   # planning assumption: switching CTV off cuts treated-market signups by about 5%
print(f"planning assumption: a go-dark changes signups in the treated markets by {EXPECTED_LIFT:.0%}")"""),
    new_markdown_cell("""\
## Search the candidate designs

Power is measured **by simulation on history**: for each candidate set of markets and test length, known
lifts are injected into many past windows and read out with exactly the estimator and inference the final
readout will use. The share of windows where the readout rejects "no effect" is the power at that lift; at zero
lift it is the false positive rate."""),
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
fig, ax = design.plot()
plt.show()"""),
    new_code_cell("""\
d = design.to_dict()
print("treated:", ", ".join(d["treated"]))
print("duration (days):", d["duration_days"])
print(f"MDE: {d['mde']:.1%} of signups in the treated markets, about {d['mde_incremental']:,.0f} signups")
print(f"false positive rate at zero lift: {d['false_positive_rate']:.0%} (alpha {d['alpha']:.0%})")
pd.DataFrame(d["power_curve"])"""),
    new_markdown_cell("""\
## Decision

The rule: run the design if the expected effect is at least its MDE; otherwise the test would more likely miss
than find the effect, and we should lengthen it or add markets before running it."""),
    new_code_cell("""\
mde = d["mde"]
if mde is None:
    decision = "Do not run: no design in the search reaches 80% power at any lift tried; widen the search."
elif EXPECTED_LIFT >= mde:
    decision = (f"Run the CTV go-dark in {', '.join(d['treated'])} for {d['duration_days']} days: "
                f"its MDE ({mde:.1%}) is below the expected {EXPECTED_LIFT:.0%}, and it raised false alarms "
                f"in {d['false_positive_rate']:.0%} of null windows at alpha {d['alpha']:.0%}.")
else:
    decision = (f"Do not run this design yet: its MDE ({mde:.1%}) is above the expected {EXPECTED_LIFT:.0%}; "
                "lengthen the test or add markets.")
print(decision)""", metadata={"tags": ["conclusion"]}),
    new_markdown_cell("""\
## Check against the truth

Only a simulated world can tell us what switching CTV off in these markets really does. The analyst never sees
this; we look to check the design's claim."""),
    new_code_cell("""\
from causal.world import Experiment
start = pd.Timestamp("2025-10-01")
end = start + pd.Timedelta(days=d["duration_days"] - 1)
truth = world.experiment_truth(Experiment("ctv", tuple(d["treated"]), str(start.date()), str(end.date()), 0.0))
true_lift = abs(truth["true_lift"])
print(f"true lift of a CTV go-dark in these markets: {truth['true_lift']:.1%} "
      f"({truth['true_incremental']:,.0f} signups, spend change {truth['spend_delta']:,.0f})")
if mde is not None and true_lift >= mde:
    print(f"The true effect ({true_lift:.1%}) is above the MDE ({mde:.1%}): the test should detect it.")
elif mde is not None:
    print(f"The true effect ({true_lift:.1%}) is below the MDE ({mde:.1%}): the planning assumption was "
          f"optimistic, and this test would detect the truth less often than {d['power_target']:.0%} of the time.")""",
                  metadata={"tags": ["conclusion"]}),
]

READOUT = [
    new_markdown_cell("""\
# Lift readout: incremental signups, not total signups

A readout answers: how many signups did the treatment **cause** in the treated markets, out of how many we
observed, at what cost per incremental signup, and how sure are we. We first compare with GeoLift's published
walkthrough, then read out a test run inside the simulated world, where the truth is known. Every number and
conclusion is printed by a cell."""),
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
GeoLift's walkthrough publishes, for this test: an ATT of 155.6 signups per market per day, 4,667 incremental
signups, a 5.4% lift and a p-value near 0.01 from its permutation test. Its test shuffles residuals as if they
were independent; geo residuals are autocorrelated, so liftlab's default draws moving blocks instead. The cell
below runs both and says what follows."""),
    new_code_cell("""\
PUBLISHED = {"att": 155.6, "incremental": 4667, "lift": 0.054, "p_value": 0.01}
g = read_out(geolift, ["chicago", "portland"], ("2021-04-01", "2021-04-15"), estimator="sc", confidence=0.9,
             inference="geolift")
print(f"point estimate: ATT {r.att:.1f} (published {PUBLISHED['att']}), incremental {r.incremental:,.0f} "
      f"(published {PUBLISHED['incremental']:,}), lift {r.lift:.1%} (published {PUBLISHED['lift']:.1%})")
print(f"p-value with GeoLift's test: {g.p_value:.3f} (published about {PUBLISHED['p_value']}); "
      f"with liftlab's default moving-block test: {r.p_value:.3f}")
same_point = abs(r.incremental / PUBLISHED["incremental"] - 1) < 0.01
print(("liftlab reproduces GeoLift's point estimate to within 1%. " if same_point else
       "liftlab's point estimate differs from GeoLift's by more than 1%. ")
      + (f"Under GeoLift's own test the effect is significant at 10% (p = {g.p_value:.3f}), but once the "
         f"residuals' autocorrelation is respected it is not (p = {r.p_value:.3f}): the evidence is weaker "
         "than the walkthrough suggests." if g.p_value < 0.1 <= r.p_value else
         f"Both tests agree at the 10% level (p = {g.p_value:.3f} and {r.p_value:.3f})."))""",
                  metadata={"tags": ["conclusion"]}),
    new_code_cell("""\
fig, ax = r.plot()
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
fig, ax = ro.plot()
plt.show()"""),
    new_markdown_cell("""\
## Total versus incremental

The table keeps the two apart: the treated markets still had many signups during the test; the go-dark removed
only the incremental part. Cost per incremental signup is the spend we saved divided by the signups we lost:
this, not cost per total signup, is what should price CTV."""),
    new_code_cell("""\
d = ro.to_dict()
pd.Series({k: d[k] for k in ("observed", "counterfactual", "incremental", "incremental_ci", "lift",
                             "p_value", "spend_delta", "cost_per_incremental")})"""),
    new_markdown_cell("""\
## Decision"""),
    new_code_cell("""\
lo, hi = d["incremental_ci"]
share = -d["incremental"] / d["observed"] if d["observed"] else float("nan")
if hi < 0:
    verdict = (f"CTV is incremental: the go-dark cost {-d['incremental']:,.0f} signups "
               f"(90% interval {-hi:,.0f} to {-lo:,.0f}), {share:.1%} of the treated markets' signups")
elif lo > 0:
    verdict = f"The go-dark *raised* signups ({d['incremental']:,.0f}); check the test before acting on it"
else:
    verdict = f"The test cannot tell CTV's effect from zero (interval {lo:,.0f} to {hi:,.0f})"
cpi = d["cost_per_incremental"]
print(verdict + (f"; each incremental signup cost {cpi:,.2f} of spend." if cpi is not None and hi < 0 else "."))
covered = lo <= t["true_incremental"] <= hi
print(f"Against the truth ({t['true_incremental']:,.0f}): the interval {'covers' if covered else 'misses'} it.")
print("The lift goes into calibration (next notebook), where it corrects the model's credit for CTV.")""",
                  metadata={"tags": ["conclusion"]}),
]

ALLOCATION = [
    new_markdown_cell("""\
# Calibrated allocation: from measured lifts to next month's budget

A regression of signups on spend over-credits branded search, whose spend follows organic demand, and
under-credits CTV and programmatic, part of whose effect travels through branded searches. liftlab's response
model is **structural**: branded query volume has its own equation (organic demand plus what the upper funnel
stirs up), branded search is credited only for the demand it captures given those queries, and a channel's
total effect is its direct effect plus the part that travels through queries. It is Bayesian, so what the data
cannot tell apart shows as width. Lifts from geo tests enter as likelihood terms on exactly their intervention.

We fit it on liftlab's simulated world twice, without and with two go-dark tests, compare each channel's credit
with the world's truth, and allocate the budget on the calibrated curves under a 15% guardrail. Every number and
conclusion is printed by a cell."""),
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
    lo, hi = d["incremental_ci"]
    print(f"{e.channel:<13} incremental {d['incremental']:>8,.0f} [{lo:,.0f}, {hi:,.0f}]  truth {t['true_incremental']:>8,.0f}")"""),
    new_markdown_cell("""\
## The structural model, without and with the lifts

The causal graph says which adjustment identifies each channel's total effect; the market clusters come from a
mapping (here the world's), not from market names."""),
    new_code_cell("""\
from allocation.calibration import Lift
from allocation.structural import StructuralModel
from causal.graph import default_graph, joint_controls, normalise

graph = normalise(default_graph(panel.channels, panel.y), panel.channels, panel.y)
clusters = dict(world.clusters().itertuples(index=False, name=None))
settings = dict(controls=joint_controls(graph, panel.channels, panel.covariates), clusters=clusters, graph=graph,
                seed=0)
without = StructuralModel(**settings).fit(panel)
lifts = [Lift.from_dict(r.to_dict()) for r in readouts]
model = StructuralModel(**settings).fit(panel, lifts=lifts)

def credit(m):
    c = m.contributions_.set_index("channel")
    return c[["total", "lo", "hi"]]

true = pd.Series(truth["contributions"])
table = pd.concat({"no lift": credit(without), "two lifts": credit(model)}, axis=1)
table[("truth", "total")] = true
for k in ("no lift", "two lifts"):
    table[(k, "x truth")] = table[(k, "total")] / true
table.round(2)"""),
    new_code_cell("""\
rows = []
for k in ("no lift", "two lifts"):
    ratio = table[(k, "x truth")]
    covered = ((table[(k, "lo")] <= true) & (true <= table[(k, "hi")]))
    worst = ratio.map(lambda r: max(r, 1 / r)).idxmax()
    rows.append(f"{k}: every channel within {ratio.map(lambda r: max(r, 1 / r)).max():.2f}x of its truth "
                f"(furthest: {worst}, {ratio[worst]:.2f}x); the 90% interval contains the truth for "
                f"{int(covered.sum())} of {len(covered)} channels")
bs = table.loc["brand_search"]
rows.append(f"branded search: {bs[('no lift', 'total')]:,.0f} signups without lifts, {bs[('two lifts', 'total')]:,.0f} "
            f"with them, truth {bs[('truth', 'total')]:,.0f}")
print("\\n".join(rows))""", metadata={"tags": ["conclusion"]}),
    new_markdown_cell("""\
## Allocate on the calibrated curves

The model writes one curve per channel and market with its posterior draws. The plan keeps today's total
budget, and no line moves more than 15% of its current spend; the gain's interval comes from the posterior
draws."""),
    new_code_cell("""\
from allocation.curves import CurveSet
from allocation.optimize import allocate
from allocation.scenarios import plan_uncertainty

curve_set = CurveSet.from_dict(model.to_curves())
plan = allocate(curve_set, max_change=0.15)
gain = plan_uncertainty(curve_set, plan)
by_channel = plan.to_frame().groupby("name")[["current_spend", "spend"]].sum()
shift = (by_channel["spend"] / by_channel["current_spend"] - 1).sort_values()
print(f"{len(curve_set)} lines ({curve_set.n_draws} posterior draws); budget {plan.to_dict()['total_spend']:,.0f} per day")
lo, hi = gain["gain_interval"]
print(f"expected gain {gain['expected_gain']:+,.1f} signups per day (90% interval {lo:+,.1f} to {hi:+,.1f}; "
      f"probability of a gain {gain['probability_gain_positive']:.0%})")
print("budget shift by channel: " + ", ".join(f"{k} {v:+.1%}" for k, v in shift.items()))""",
                  metadata={"tags": ["conclusion"]}),
    new_code_cell("""\
fig, ax = plt.subplots(figsize=(8, 3.5))
shift.mul(100).plot.barh(ax=ax, color=["#c0504d" if v < 0 else "#2f5fa7" for v in shift])
ax.set_xlabel("change of daily spend, % (guardrail 15% per line)")
ax.set_title("Where the calibrated plan moves the budget")
plt.show()"""),
    new_markdown_cell("""\
## Decision

The plan moves money toward the channels whose calibrated **marginal** return is highest, within the guardrail.
A channel's total credit says nothing about where the next unit of spend works best. The next test should go
where the posterior is least sure relative to what is at stake: `liftlab propose-tests` ranks candidate tests by
the expected value of their information for this plan."""),
]


def write(name: str, cells: list, *, execute: bool = False) -> None:
    """Write a notebook; with ``execute``, run it top to bottom first so it is stored with its outputs."""
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if execute:
        from nbclient import NotebookClient

        NotebookClient(nb, timeout=1200, kernel_name="python3",
                       resources={"metadata": {"path": str(HERE)}}).execute()
    nbformat.write(nb, HERE / name)


NOTEBOOKS = {"experiment_design.ipynb": DESIGN, "lift_readout.ipynb": READOUT,
             "calibrated_allocation.ipynb": ALLOCATION}

if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--execute", action="store_true", help="run each notebook and store its outputs")
    parser.add_argument("names", nargs="*", help="notebooks to write (default: all)")
    args = parser.parse_args()
    for name in args.names or NOTEBOOKS:
        write(name, NOTEBOOKS[name], execute=args.execute)
