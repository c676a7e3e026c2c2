"""Benchmark the allocator: cvxpy (global optimum) against scipy SLSQP from the current allocation, and scale.

SLSQP started from the current allocation is what Robyn and PyMC-Marketing
run. On the same curves, budget and bounds, this prints the objective gap
(cvxpy minus SLSQP, relative) and the time ratio (SLSQP time / cvxpy time), for

* 6 channels (concave curves),
* 50 markets x 6 channels (300 lines, concave curves),
* 6 channels with S-shaped Hill curves (cvxpy side: the mixed-integer model),

re-solves a budget sweep through the DPP parameters, then times a 28-day daily
plan for 190 markets x 8 channels with adstock and the rolling 7-day guardrail
(target: under 10 s on 2 cores) with ``plan_days``' default solver (the
structured interior point of ``allocation.daily_ipm``) against the same problem
written in cvxpy and solved by Clarabel (``--no-previous`` skips it), prints the
objective difference and the time ratio, and checks that the guardrail holds.

``--scale CURVES_JSON`` instead times the per-market daily plan at 50, 190 and 400 markets x 8
channels x 28 days with the guardrail, a launch calendar and a budget per market, on
per-market curves derived from a calibrated ``curves.json`` (``liftlab calibrate`` writes one
curve per market cluster, per unit of market size times the cluster's size: each market gets
its cluster's curve at its own size, :func:`causal.response.to_market`, S-shaped Hill included;
the three channels beyond calibrate's five repeat social, programmatic and ctv at half size).
It prints wall time, peak traced memory (tracemalloc) and the growth exponents
(slope of log time and log memory on log markets).

Run: ``.venv/bin/python benchmarks/bench_allocation.py [--markets 190] [--repeats 3] [--daily-only] [--no-previous]``
or ``.venv/bin/python benchmarks/bench_allocation.py --scale curves.json``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.optimize import minimize

from allocation.business_rules import Rules
from allocation.constraints import guardrail_violation
from allocation.curves import CurveSet
from allocation.daily_plan import plan_days
from allocation.optimize import allocate
from allocation.scenarios import budget_sweep

CHANNELS = [
    "nonbrand_search",
    "brand_search",
    "social",
    "programmatic",
    "ctv",
    "partnerships",
    "display",
    "affiliate",
]


def make_curves(
    rng: np.random.Generator,
    markets: int,
    channels: int,
    *,
    s_shaped: bool = False,
    decay: bool = False,
) -> CurveSet:
    """Random curves of mixed forms; one shape per channel (as a calibration pooled over markets gives)."""
    lines = []
    for m in range(markets):
        size = float(rng.lognormal(0, 0.5))
        for j in range(channels):
            kind = j % 3
            if s_shaped and j % 2 == 0:
                resp = {
                    "form": "hill",
                    "beta": 300 * size * rng.uniform(0.5, 1.5),
                    "half_saturation": 2000 * size * rng.uniform(0.5, 1.5),
                    "shape": [2.0, 2.5, 3.0][kind],
                }
            elif kind == 0:
                resp = {
                    "form": "exp",
                    "beta": 80 * size * rng.uniform(0.5, 1.5),
                    "scale": 1500 * size * rng.uniform(0.5, 1.5),
                }
            elif kind == 1:
                resp = {
                    "form": "log",
                    "beta": 20 * size * rng.uniform(0.5, 1.5),
                    "scale": 800 * size * rng.uniform(0.5, 1.5),
                }
            else:
                resp = {
                    "form": "hill",
                    "beta": 90 * size * rng.uniform(0.5, 1.5),
                    "half_saturation": 1500 * size * rng.uniform(0.5, 1.5),
                    "shape": [0.6, 0.8, 1.0][j % 3],
                }
            line = {
                "name": CHANNELS[j],
                "market": f"M{m:03d}",
                "response": resp,
                "current_spend": float(1000 * size * rng.uniform(0.3, 1.7)),
            }
            if decay:
                line["adstock"] = {
                    "form": "geometric",
                    "decay": [0.1, 0.2, 0.4, 0.5, 0.6, 0.3, 0.3, 0.2][j],
                }
            lines.append(line)
    return CurveSet.from_dict({"channels": lines})


def slsqp(curves: CurveSet, budget: float) -> tuple[np.ndarray, float]:
    """SLSQP from the current allocation, with the analytic gradient, as the local tools run it."""
    x0 = curves.current()
    n = len(curves)
    t0 = time.perf_counter()
    res = minimize(
        lambda x: -curves.evaluate(x).sum(),
        x0,
        jac=lambda x: -np.nan_to_num(curves.marginal(x), posinf=1e6),
        method="SLSQP",
        bounds=[(0, budget)] * n,
        constraints=[
            {"type": "eq", "fun": lambda x: x.sum() - budget, "jac": lambda x: np.ones(n)}
        ],
        options={"maxiter": 1000, "ftol": 1e-10},
    )
    return res.x, time.perf_counter() - t0


def compare(name: str, curves: CurveSet, repeats: int) -> None:
    budget = float(curves.current().sum())
    t_cvx, t_sl = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        plan = allocate(curves, rules=Rules(budget=budget, budget_mode="eq"))
        t_cvx.append(time.perf_counter() - t0)
        x, t = slsqp(curves, budget)
        t_sl.append(t)
    f_cvx = plan.total_incremental
    x = np.clip(x, 0, None)
    f_sl = float(curves.evaluate(x).sum())
    viol = abs(x.sum() - budget) / budget
    print(
        f"{name:<34} lines {len(curves):>4}  cvxpy {f_cvx:12.4f} ({plan.method}, gap bound {plan.gap:.1e})  "
        f"SLSQP {f_sl:12.4f} (budget off by {viol:.1e})  objective gap {(f_cvx - f_sl) / f_cvx:+.3e}  "
        f"time cvxpy {np.median(t_cvx):.3f}s SLSQP {np.median(t_sl):.3f}s ratio SLSQP/cvxpy {np.median(t_sl) / np.median(t_cvx):.2f}"
    )


def clarabel_daily(curves: CurveSet, rules: Rules, days: int) -> tuple[float, float]:
    """The same daily plan written in cvxpy and solved by Clarabel: horizon objective, wall seconds."""
    t0 = time.perf_counter()
    plan = plan_days(curves, rules, days=days, solver="CLARABEL")
    return float(plan.response.to_numpy().sum()), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--markets", type=int, default=190)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--days", type=int, default=28)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--daily-only", action="store_true", help="only the 28-day plan at scale")
    ap.add_argument(
        "--no-previous",
        action="store_true",
        help="skip the same daily plan solved by Clarabel (slow)",
    )
    ap.add_argument(
        "--scale",
        metavar="CURVES_JSON",
        default=None,
        help="time 50/190/400 markets on per-market curves derived from this calibrated curves.json",
    )
    ap.add_argument("--sizes", default="50,190,400")
    args = ap.parse_args()
    if args.scale:
        scale_table(args.scale, [int(v) for v in args.sizes.split(",")], args.days, args.seed)
        return
    rng = np.random.default_rng(args.seed)
    if not args.daily_only:
        compare_static(rng, args.repeats)
    daily(
        np.random.default_rng([args.seed, 1]), args
    )  # its own stream: the same curves with --daily-only


def compare_static(rng: np.random.Generator, repeats: int) -> None:
    print("== cvxpy vs SLSQP from the current allocation (same curves, budget = current total) ==")
    compare("6 channels, concave", make_curves(rng, 1, 6), repeats)
    compare("50 markets x 6 channels, concave", make_curves(rng, 50, 6), repeats)
    compare("6 channels, 3 S-shaped Hill", make_curves(rng, 1, 6, s_shaped=True), repeats)
    # The usual trap: S-shaped channels now run below their threshold (new or cut-back channels).
    low = make_curves(rng, 1, 6, s_shaped=True).to_dict()
    total = sum(line["current_spend"] for line in low["channels"])
    for line in low["channels"]:
        if line["response"].get("shape", 1) > 1:
            line["current_spend"] = 0.05 * line["response"]["half_saturation"]
    rest = total - sum(
        line["current_spend"] for line in low["channels"] if line["response"].get("shape", 1) > 1
    )
    others = [line for line in low["channels"] if line["response"].get("shape", 1) <= 1]
    for line in others:
        line["current_spend"] = rest / len(others)
    compare("6 channels, S-shaped ones below threshold", CurveSet.from_dict(low), repeats)

    print("\n== budget sweep through the DPP parameters (50 x 6) ==")
    curves = make_curves(rng, 50, 6)
    b = float(curves.current().sum())
    t0 = time.perf_counter()
    fr = budget_sweep(curves, np.linspace(0.25, 2, 20) * b)
    print(
        f"20 budgets in {time.perf_counter() - t0:.2f}s; marginal cost at 1x budget "
        f"{np.interp(b, fr.table['budget'], fr.table['marginal_cost']):.2f}"
    )


def daily(rng: np.random.Generator, args: argparse.Namespace) -> None:
    print(
        f"\n== {args.days}-day plan, {args.markets} markets x {args.channels} channels, adstock, 15% rolling 7-day guardrail =="
    )
    curves = make_curves(rng, args.markets, args.channels, decay=True)
    cur = curves.current()
    rules = Rules(budget=float(cur.sum() * args.days), max_change=0.15)
    t0 = time.perf_counter()
    plan = plan_days(curves, rules, days=args.days)
    wall = time.perf_counter() - t0
    viol = guardrail_violation(plan.schedule.to_numpy(), plan.history, cur, 0.15)
    print(
        f"status {plan.status}: {len(curves)} lines x {args.days} days = {len(curves) * args.days} spend variables; "
        f"{plan.method}; wall {wall:.2f}s (solve {plan.solve_seconds:.2f}s); target < 10 s: "
        f"{'met' if wall < 10 else 'NOT met'}; largest window change / allowed band {viol:.6f}"
    )
    if not args.no_previous:
        ref, t_ref = clarabel_daily(curves, rules, args.days)
        got = float(plan.response.to_numpy().sum())
        print(
            f"same problem in cvxpy, Clarabel: wall {t_ref:.2f}s; objective {ref:.6f} vs {got:.6f} "
            f"(relative difference {(got - ref) / ref:+.2e}); time ratio Clarabel / structured {t_ref / wall:.2f}"
        )


EXTRA = {"partnerships": "social", "display": "programmatic", "affiliate": "ctv"}


def per_market_curves(path: str, markets: int, seed: int) -> CurveSet:
    """Per-market lines from calibrate's per-cluster lines: each market gets its cluster's curve at its size."""
    from causal import response as R

    cal = CurveSet.load(path)
    clusters = sorted({c.market for c in cal})
    rng = np.random.default_rng(seed)
    cluster_of = [clusters[m % len(clusters)] for m in range(markets)]
    sizes = rng.lognormal(0.0, 0.6, markets)
    total = {k: sum(sz for sz, c in zip(sizes, cluster_of) if c == k) for k in clusters}
    lines = []
    for m in range(markets):
        k, share = cluster_of[m], sizes[m] / total[cluster_of[m]]
        for c in cal:
            if c.market != k:
                continue
            for name, factor in [(c.name, 1.0)] + [
                (e, 0.5) for e, src in EXTRA.items() if src == c.name
            ]:
                # The cluster curve is S * f(x / S) for a per-unit curve f; the market's is s * f(x / s).
                unit = R.to_market(c.form, c.params, 1.0 / total[k])
                params = {
                    key: float(v)
                    for key, v in R.to_market(c.form, unit, total[k] * share * factor).items()
                }
                lines.append(
                    {
                        "name": name,
                        "market": f"G{m:03d}",
                        "response": {"form": c.form, **params},
                        "adstock": {"form": "geometric", "decay": c.decay},
                        "current_spend": float(c.current_spend * share * factor),
                    }
                )
    return CurveSet.from_dict({"channels": lines})


def scale_table(path: str, sizes: list[int], days: int, seed: int) -> None:
    import tracemalloc

    from allocation.launches import Launch, LaunchCalendar

    print(
        f"== per-market daily plans on calibrated curves ({path}): {days} days, 15% rolling guardrail, "
        "launch calendar, market budgets 1.05x current =="
    )
    print(
        "| markets | lines | S-shaped lines | wall s | CPU s | peak MiB | certificate | gap | market budgets binding |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
    rows = []
    for markets in sizes:
        curves = per_market_curves(path, markets, seed)
        cur = curves.current()
        caps = {}
        for c, v in zip(curves, cur):
            caps[c.market] = caps.get(c.market, 0.0) + 1.05 * v
        cal = LaunchCalendar(
            [
                Launch(day=10, market="G001", strength=0.8),
                Launch(day=18, market="G002", strength=0.5),
            ]
        )
        rules = Rules(budget=float(cur.sum() * days), max_change=0.15, market_budgets=caps)
        # Time without tracing (tracemalloc slows allocation), then the peak memory in a traced run.
        t0, c0 = time.perf_counter(), time.process_time()
        plan = plan_days(curves, rules, days=days, calendar=cal)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        tracemalloc.start()
        plan_days(curves, rules, days=days, calendar=cal)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        viol = guardrail_violation(plan.schedule.to_numpy(), plan.history, cur, 0.15)
        assert viol <= 1 + 1e-9
        cert = plan.to_dict()["certificate"]
        n_s = sum(not c.is_concave for c in curves)
        binding = sum(b["constraint"] == "market_budgets" for b in plan.binding)
        rows.append((markets, wall, peak))
        print(
            f"| {markets} | {len(curves)} | {n_s} | {wall:.2f} | {cpu:.2f} | {peak:.0f} | {cert['kind']} | {plan.gap:.1e} | "
            f"{binding} |"
        )
    if 190 in sizes:
        # The same-process reference: the previous figure's setting (random concave curves, no market budgets).
        ref = make_curves(np.random.default_rng([seed, 1]), 190, 8, decay=True)
        rc = ref.current()
        t0 = time.perf_counter()
        plan_days(ref, Rules(budget=float(rc.sum() * days), max_change=0.15), days=days)
        t_ref = time.perf_counter() - t0
        print(f"reference CPU {time.process_time():.0f} s in total so far")
        t_190 = next(r[1] for r in rows if r[0] == 190)
        print(
            f"reference in the same process: 190 x 8 random concave curves without market budgets {t_ref:.2f}s; "
            f"calibrated per-market curves with market budgets and calendar take {t_190 / t_ref:.2f}x that"
        )
    m, t, mem = (np.log([r[i] for r in rows]) for i in range(3))
    print(
        f"growth exponent (log-log slope over markets): time {np.polyfit(m, t, 1)[0]:.2f}, "
        f"memory {np.polyfit(m, mem, 1)[0]:.2f}"
    )


if __name__ == "__main__":
    main()
