"""Write notebooks/closed_loop.ipynb (run: python notebooks/build_closed_loop.py --execute).

Stored executed, with outputs; tests/test_notebooks.py re-executes it and fails
when a cell tagged ``conclusion`` no longer prints what is stored. Every
conclusion is text built from the results. Edit the cells here, not in the
.ipynb file. The world is small (16
markets, eight weeks of backtest) so the notebook runs in well under a minute;
benchmarks/backtest_full.py runs the full-size version.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

CELLS = [
    new_markdown_cell("""\
# The closed loop: what each way of deciding the budget is worth

Measurement is only worth what it does to budget decisions. This notebook replays the same stretch of time
five times in liftlab's simulated world, each time with a different way of deciding where the money goes,
and counts the **true** incremental signups each one earned. Because the world is simulated, we know exactly
what every euro did; in real life we never do, which is the whole point of the exercise.

The five ways of deciding:

1. **Status quo** — keep today's split between channels and markets.
2. **Quarterly observational** — once a quarter, fit a media-mix model on the history and move the money to
   what it says works. No experiments.
3. **Quarterly calibrated** — the same, but the model is first corrected with the results of go-dark tests,
   and no line moves beyond double or half its spend in one quarter: a fitted curve is only trustworthy near
   the spend it was fitted and tested on.
4. **The daily loop** — every week a new go-dark test on one channel in a few markets; each readout corrects
   the curves; every day the plan moves a little (at most 15% of a line's spend in any 7 days).
5. **The oracle** — what a planner who knew the true response curves would do: the ceiling.

Every policy plans the same daily budget. The daily loop pays for its learning: its tests switch channels
off in some markets, and the signups lost there are counted against it. Because tests change what is spent,
the fair comparison runs every policy's plan without the test cuts, at exactly equal spend: the share of the
oracle's gain over the status quo that each policy captures."""),
    new_code_cell("""\
%matplotlib inline
import warnings
import matplotlib.pyplot as plt
import pandas as pd
warnings.simplefilter("ignore")
pd.set_option("display.width", 140)

from allocation.backtest import backtest
from causal.world import World

world = World(16, 300, seed=1)          # 16 markets in four regions, ~10 months of history
result = backtest(world, days=56, seed=0)  # eight weeks, replayed once per policy
print(result.summary())"""),
    new_markdown_cell("""\
## The scoreboard

*Cost per incremental signup* is spend divided by the signups the media really caused (not the signups that
merely passed through a channel). *Share of oracle* says how much of the best achievable result a policy
captured."""),
    new_code_cell("""\
table = result.summary_table.copy()
table["cost_per_incremental"] = table["cost_per_incremental"].round(2)
table["share_of_oracle"] = (100 * table["share_of_oracle"]).round(1).astype(str) + "%"
table["cpi_vs_status_quo"] = (100 * table["cpi_vs_status_quo"]).round(1).astype(str) + "%"
table[["spend", "incremental"]] = table[["spend", "incremental"]].round(0)
table"""),
    new_code_cell("""\
t = result.summary_table
sq = t.loc["status quo", "cost_per_incremental"]
print("At equal spend (every plan run without its test cuts), share of the oracle's gain over the status quo:")
for name in t.index:
    if name not in ("status quo", "oracle"):
        print(f"  {name}: {t.loc[name, 'share_of_oracle_gain']:.0%}")
best = t.drop(index=["oracle"])["equal_incremental"].idxmax()
print(f"Best policy short of the oracle at equal spend: {best}. Against the status quo's true cost per "
      f"incremental signup ({sq:.2f}), the daily loop's is {t.loc['daily loop', 'cost_per_incremental']:.2f} "
      f"({t.loc['daily loop', 'cost_per_incremental'] / sq - 1:+.1%}) and the uncalibrated quarterly model's "
      f"{t.loc['quarterly observational', 'cost_per_incremental']:.2f} "
      f"({t.loc['quarterly observational', 'cost_per_incremental'] / sq - 1:+.1%}).")""", metadata={"tags": ["conclusion"]}),
    new_markdown_cell("""\
## Over time

The curves below are cumulative true incremental signups. A policy that trusts an uncorrected model can move
money in the wrong direction all at once; the guardrailed loop moves slowly but in the direction the tests
support."""),
    new_code_cell("""\
fig, ax = result.plot()
ax.set_title("Cumulative true incremental signups")
plt.show()"""),
    new_markdown_cell("""\
## Where the money went

Average daily spend per channel under each policy (summed over the four regions)."""),
    new_code_cell("""\
by_channel = {name: plan.mean().groupby(lambda c: c.split("/")[0]).sum() for name, plan in result.plans.items()}
pd.DataFrame(by_channel).round(0)"""),
    new_markdown_cell("""\
## The price of learning, and the rules the loop kept

The daily loop's tests switch a channel off in a few markets for three weeks. That costs signups; the figure
below is already netted into its scoreboard line. The loop must also never run two tests on the same market
at the same time, and never move a line more than 15% of its spend within a week."""),
    new_code_cell(metadata={"tags": ["conclusion"]}, source="""\
print(f"signups given up to run the tests: {result.given_up['signups']:,.0f} "
      f"(spend saved {result.given_up['spend']:,.0f})")
print(f"largest 7-day move as a share of the 15% guardrail: {result.guardrail:.3f} (at most 1 keeps the rule)")
print(f"pairs of overlapping tests: {len(result.overlaps)}")
print("The loop kept both rules." if result.guardrail <= 1 + 1e-9 and not result.overlaps
      else "The loop broke a rule: see the figures above.")
pd.DataFrame(result.tests)[["channel", "cluster", "geos", "start", "end", "incremental"]].round(0)"""),
    new_markdown_cell("""\
## The decision log

Every daily re-plan is logged (and, from the command line, written to the audit trail)."""),
    new_code_cell("""\
result.decisions.head(10).round(0)"""),
    new_markdown_cell("""\
## How to read this

* A model that is not corrected by experiments can move money in the wrong direction all at once; the
  scoreboard above shows what that costs against the status quo in this world.
* Calibration on experiments, and moving only as far as the evidence reaches, removes most of that damage;
  the daily loop trades a few signups for tests against steadier, better-informed moves.
* Eight weeks on 16 markets is a demonstration. `benchmarks/backtest_full.py` runs two quarters on the
  default 50-market world over four seeds; its figures are in `docs/backtest.md`, and
  `liftlab backtest --out DIR --report backtest.html` runs it from the command line."""),
]


def main(execute: bool = False) -> None:
    nb = new_notebook(cells=CELLS, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    if execute:
        from nbclient import NotebookClient

        NotebookClient(nb, timeout=1200, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
    nbformat.write(nb, HERE / "closed_loop.ipynb")


if __name__ == "__main__":
    import sys

    main(execute="--execute" in sys.argv[1:])
