"""The closed-loop study (issues 14 and 16): which tests a daily calibrated loop should run, and the guardrail.

Runs, on one world, the status quo, the structural-model loop with no tests, with round-robin tests and with
tests chosen by value of information (``propose_tests``), the oracle held to the guardrail, and the
oracle; every policy at equal spend and every loop at equal test budget (one 21-day go-dark test a week
on the same number of markets). Prints the share of the oracle's gain over the status quo each captures
and each structural loop's credit per channel against the truth at the horizon's end, and writes them
to ``benchmarks/out/loop_study_<config>_<seed>.json``; ``--table`` prints the markdown tables of every
seed run so far (docs/backtest.md).

    python benchmarks/backtest_loop_study.py --seed 0            # the study configuration
    python benchmarks/backtest_loop_study.py --table
    python benchmarks/backtest_loop_study.py --seed 0 --geos 50 --history 365 --days 182 --only-oracles

The study configuration (``STUDY``: 16 markets, 180 days of history, a 63-day horizon, tests on half a
cluster's markets) is small enough to run the structural loops on four seeds within 40 minutes on two
cores shared with five other engineers (``--with-daily-loop`` adds
the response-model daily loop); ``--only-oracles`` runs the
status quo and both oracles alone (seconds), which is how the guardrail's ceiling is measured on the
full configuration too.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from allocation.backtest import DailyLoop, GuardedOracle, Oracle, StatusQuo, backtest
from allocation.backtest_structural import VOI_INTENSITIES, VOI_OPTIONS, StructuralLoop
from causal.world import World

STUDY = {"geos": 16, "history": 180, "days": 63}
# Half of a cluster's markets per test (2 of 4): a third would be one market, too weak to read.
TEST_SHARE = 0.5
OUT = Path(__file__).with_name("out")
PROPOSERS = ("none", "design", "voi")


def run(
    seed: int,
    geos: int,
    history: int,
    days: int,
    only_oracles: bool,
    with_daily_loop: bool,
    plan_on: str = "draws",
    proposers: tuple[str, ...] = PROPOSERS,
    intensities: tuple[str, ...] = VOI_INTENSITIES,
    replan_every: int | None = None,
    n_outcomes: int | None = None,
) -> dict:
    started = time.perf_counter()
    world = World(geos, history + days, seed=seed)
    opts = {"test_share": TEST_SHARE, "n_draws": 60, "plan_on": plan_on}
    options = {**VOI_OPTIONS, "replan_every": replan_every}
    if n_outcomes:
        options["n_outcomes"] = n_outcomes
    voi = {"intensities": intensities, "voi_options": options}
    loops = [
        *([DailyLoop(test_share=TEST_SHARE)] if with_daily_loop else []),
        *(StructuralLoop(proposer=p, **opts, **(voi if p == "voi" else {})) for p in proposers),
    ]
    policies = [StatusQuo(), *([] if only_oracles else loops), GuardedOracle(), Oracle()]
    result = backtest(world, days=days, seed=seed, policies=policies)
    print(result.summary())
    t = result.summary_table
    return {
        "config": {"geos": geos, "history": history, "days": days, "seed": seed},
        "plan_on": plan_on,
        "intensities": list(intensities),
        "replan_every": replan_every,
        "voi_options": options,
        "share_of_oracle_gain": t["share_of_oracle_gain"].to_dict(),
        "equal_incremental": t["equal_incremental"].to_dict(),
        "loops": result.loops,
        "credit": None if result.credit is None else result.credit.to_dict(orient="index"),
        "seconds": time.perf_counter() - started,
    }


def net_table(rs: list[dict]) -> None:
    """Each loop's gain against the ceiling the guardrail leaves, and what is left once its tests are paid.

    The oracle held to the guardrail knows the truth from the first day, so its share of the oracle's gain
    is the most any policy under the guardrail can capture; a loop's share of *its* gain says how much of
    the reachable gain the loop's learning got. The tests' cost is ``net_signups`` (signups the tests gave
    up, less the spend they moved valued at the status quo's true marginal return), so the gain net of it
    compares loops that test with loops that do not at equal spend.
    """
    guarded = "oracle within the guardrail"
    if not all(guarded in r["equal_incremental"] for r in rs):
        return
    print(
        "\nshare of the guarded oracle's gain at equal spend; gain net of the tests' cost, signups"
    )
    print("| loop | " + " | ".join(f"seed {r['config']['seed']}" for r in rs) + " | mean |")
    print("| --- |" + " ---: |" * (len(rs) + 1))
    for name in rs[0]["loops"]:
        shares, nets = [], []
        for r in rs:
            eq, lp = r["equal_incremental"], r["loops"].get(name)
            if lp is None:
                shares.append(float("nan"))
                nets.append(float("nan"))
                continue
            gain = eq[name] - eq["status quo"]
            shares.append(gain / (eq[guarded] - eq["status quo"]))
            nets.append(gain - lp["given_up"]["net_signups"])
        cells = [f"{s:.1%}; {n:,.0f}" for s, n in zip(shares, nets)]
        mean = f"{sum(shares) / len(shares):.1%}; {sum(nets) / len(nets):,.0f}"
        print(f"| {name} | " + " | ".join(cells) + f" | {mean} |")


def table() -> None:
    runs = [json.loads(p.read_text()) for p in sorted(OUT.glob("loop_study_*.json"))]
    by_cfg: dict[str, list] = {}
    for r in runs:
        c = r["config"]
        by_cfg.setdefault(
            f"{c['geos']} markets, {c['history']} days history, {c['days']}-day horizon"
            + (", planned on the draws" if r.get("plan_on") == "draws" else "")
            + f", VOI tests {'/'.join(r.get('intensities', ['go-dark']))}"
            + (
                f", valued re-planning every {r['replan_every']} days"
                if r.get("replan_every")
                else ""
            )
            + (
                f", {r['voi_options']['n_outcomes']} simulated readouts"
                if r.get("voi_options", {}).get("n_outcomes", VOI_OPTIONS["n_outcomes"])
                != VOI_OPTIONS["n_outcomes"]
                else ""
            ),
            [],
        ).append(r)
    for cfg, rs in by_cfg.items():
        rs.sort(key=lambda r: r["config"]["seed"])
        print(f"\n{cfg}: share of the oracle's gain over the status quo at equal spend")
        print("| policy | " + " | ".join(f"seed {r['config']['seed']}" for r in rs) + " |")
        print("| --- |" + " ---: |" * len(rs))
        for name in rs[0]["share_of_oracle_gain"]:
            cells = [f"{r['share_of_oracle_gain'].get(name, float('nan')):.1%}" for r in rs]
            print(f"| {name} | " + " | ".join(cells) + " |")
        print("| *wall time, s* | " + " | ".join(f"{r['seconds']:.0f}" for r in rs) + " |")
        for name in rs[0]["loops"]:
            cells = []
            for r in rs:
                lp = r["loops"].get(name)
                g = lp["given_up"] if lp else {}
                cells.append(
                    "—"
                    if not lp
                    else f"{lp['n_tests']} ({', '.join(f'{v} {k}' for k, v in g.get('by_intensity', {}).items()) or 'go-dark'}); "
                    f"signups given up {g['signups']:,.0f}; extra spend {g.get('extra_spend', 0):,.0f}"
                )
            print(f"| *{name}: tests; given up* | " + " | ".join(cells) + " |")
        net_table(rs)
        if rs[0]["credit"]:
            print("\ncredit at the horizon's end, x truth (worst channel in bold)")
            chans = list(next(iter(rs[0]["credit"].values())))
            print("| loop | seed | " + " | ".join(chans) + " | worst |")
            print("| --- | ---: |" + " ---: |" * (len(chans) + 1))
            for name in rs[0]["credit"]:
                for r in rs:
                    c = r["credit"][name]
                    worst = max(max(v, 1 / v) if v > 0 else float("inf") for v in c.values())
                    print(
                        f"| {name} | {r['config']['seed']} | "
                        + " | ".join(f"{c[ch]:.2f}" for ch in chans)
                        + f" | {worst:.2f}x |"
                    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--geos", type=int, default=STUDY["geos"])
    ap.add_argument("--history", type=int, default=STUDY["history"])
    ap.add_argument("--days", type=int, default=STUDY["days"])
    ap.add_argument("--only-oracles", action="store_true")
    ap.add_argument("--table", action="store_true")
    ap.add_argument(
        "--plan-on",
        default="draws",
        choices=("mean", "draws"),
        help="structural loops plan on point curves or on the expected response over the draws",
    )
    ap.add_argument(
        "--with-daily-loop", action="store_true", help="also the response-model daily loop"
    )
    ap.add_argument(
        "--proposers",
        default=",".join(PROPOSERS),
        help="structural loops to run (comma list of none, design, voi)",
    )
    ap.add_argument(
        "--intensities",
        default=",".join(VOI_INTENSITIES),
        help="the VOI loop's test intensities (comma list of go-dark, half, heavy-up)",
    )
    ap.add_argument(
        "--replan-every",
        type=int,
        default=None,
        help="the VOI proposer values a test for plans re-made every N days under the guardrail "
        "(propose_tests' replan_every; default: one guardrail step)",
    )
    ap.add_argument(
        "--voi-outcomes",
        type=int,
        default=None,
        help="simulated readouts per VOI candidate (default VOI_OPTIONS['n_outcomes'])",
    )
    args = ap.parse_args()
    if args.table:
        return table()
    r = run(
        args.seed,
        args.geos,
        args.history,
        args.days,
        args.only_oracles,
        args.with_daily_loop,
        args.plan_on,
        tuple(args.proposers.split(",")) if args.proposers else (),
        tuple(args.intensities.split(",")),
        args.replan_every,
        args.voi_outcomes,
    )
    OUT.mkdir(exist_ok=True)
    tag = f"{args.geos}x{args.history}x{args.days}{'o' if args.only_oracles else ''}"
    tag += "d" if args.plan_on == "draws" else ""
    if args.intensities != ",".join(VOI_INTENSITIES):  # another design, e.g. go-dark tests only
        tag += "_" + args.intensities.replace(",", "+")
    if args.replan_every:
        tag += f"_r{args.replan_every}"
    if args.voi_outcomes:
        tag += f"_o{args.voi_outcomes}"
    (OUT / f"loop_study_{tag}_{args.seed}.json").write_text(json.dumps(r, indent=1, default=float))
    print(f"wall time {r['seconds']:.0f} s")


if __name__ == "__main__":
    main()
