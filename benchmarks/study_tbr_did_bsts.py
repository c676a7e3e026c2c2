"""Simulation study of tbr, did and bsts on the simulated world (known injected lifts).

Each replication builds a world (``causal.world.World``, AR(1) geo deviations
with rho 0.8) from its own seed, picks ``n_treated`` treated geos and a test
window at random, multiplies the treated geos' signups in the window by
``1 + lift`` (so the true effect on the treated average is known exactly) and
reads the effect out with each estimator's own inference at ``alpha`` (one fit
per world, inference under every lift). Variants: the defaults ``tbr``,
``did``, ``bsts`` and the alternatives compared in the docs.

Reported per estimator: bias and RMSE of the cumulative effect relative to the
counterfactual total (i.e. in lift points), coverage of the 1 - alpha interval,
false positive rate at zero lift, and power at the given lifts.

Usage::

    .venv/bin/python benchmarks/study_tbr_did_bsts.py --reps 200 --out study.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from causal.base import make_estimator
from causal.world import World

# Study variants: name -> (estimator name, parameters). bsts runs with 5000 draws to keep the study short.
VARIANTS = {
    "tbr": ("tbr", {}),
    "tbr_analytic": ("tbr", {"calibration": None}),
    "did": ("did", {}),
    "did_level": ("did", {"scale": "level"}),
    "did_cluster": ("did", {"inference": "cluster"}),
    "bsts": ("bsts", {"niter": 5000, "nwarmup": 500}),
    "bsts_placebo": ("bsts", {"niter": 5000, "nwarmup": 500, "calibration": "placebo"}),
}


def draw_case(
    seed: int,
    *,
    n_geos: int = 30,
    n_days: int = 240,
    pre: int = 84,
    test: int = 28,
    n_treated: int = 2,
) -> dict:
    """One replication's data: treated pre/post, controls pre/post, untreated truth."""
    rng = np.random.default_rng(10_000 + seed)
    world = World(n_geos, n_days, seed=seed)
    y = world.run().signups.astype(float)
    start = int(rng.integers(pre, n_days - test + 1))
    treated = rng.choice(n_geos, n_treated, replace=False)
    control = np.setdiff1d(np.arange(n_geos), treated)
    pre_rows, post_rows = slice(start - pre, start), slice(start, start + test)
    return {
        "Y_pre": y[pre_rows][:, treated],
        "Y_post0": y[post_rows][:, treated],
        "X_pre": y[pre_rows][:, control],
        "X_post": y[post_rows][:, control],
    }


def run_case(variant: str, case: dict, lifts, alpha: float) -> dict:
    """Fit one variant once on one case; infer under each multiplicative lift against the truth."""
    name, params = VARIANTS[variant]
    est = make_estimator(name, **params)
    est.fit(case["Y_pre"], case["X_pre"], case["X_post"])
    base = float(case["Y_post0"].mean(axis=1).sum())
    out = {}
    for lift in lifts:
        inf = est.effect_inference(case["Y_post0"] * (1.0 + lift), confidence=1 - alpha)
        truth = lift * base
        out[lift] = {
            "error_rel": (inf.effect - truth) / base,
            "covered": bool(inf.effect_ci[0] <= truth <= inf.effect_ci[1]),
            "rejected": bool(inf.p_value < alpha),
        }
    return out


def study(
    variants: list[str],
    reps: int,
    *,
    lifts=(0.0, 0.05, 0.10),
    alpha: float = 0.1,
    seed0: int = 0,
    **case_kw,
) -> dict:
    out: dict = {}
    for variant in variants:
        t0 = time.perf_counter()
        rows = {lift: [] for lift in lifts}
        for r in range(reps):
            res = run_case(variant, draw_case(seed0 + r, **case_kw), lifts, alpha)
            for lift in lifts:
                rows[lift].append(res[lift])
        null = rows[0.0] if 0.0 in rows else rows[lifts[0]]
        err = np.array([x["error_rel"] for lift in lifts for x in rows[lift]])
        out[variant] = {
            "reps": reps,
            "bias_lift_points": float(err.mean()),
            "rmse_lift_points": float(np.sqrt((err**2).mean())),
            "coverage": float(np.mean([x["covered"] for lift in lifts for x in rows[lift]])),
            "fpr": float(np.mean([x["rejected"] for x in null])),
            "power": {
                str(lift): float(np.mean([x["rejected"] for x in rows[lift]]))
                for lift in lifts
                if lift != 0.0
            },
            "seconds": time.perf_counter() - t0,
        }
    return out


def table(results: dict, alpha: float) -> str:
    lines = [
        f"| variant | reps | bias (lift pts) | RMSE (lift pts) | coverage {1 - alpha:.0%} | FPR at alpha {alpha} | "
        + " | ".join(f"power at {k}" for k in next(iter(results.values()))["power"])
        + " | seconds |",
        "| --- " * (7 + len(next(iter(results.values()))["power"])) + "|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['reps']} | {r['bias_lift_points']:+.4f} | {r['rmse_lift_points']:.4f} | {r['coverage']:.3f} | "
            f"{r['fpr']:.3f} | "
            + " | ".join(f"{v:.3f}" for v in r["power"].values())
            + f" | {r['seconds']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument(
        "--variants",
        default="tbr,tbr_analytic,did,did_level,did_cluster,bsts,bsts_placebo",
        help=f"comma-separated, of: {', '.join(VARIANTS)}",
    )
    ap.add_argument("--alpha", type=float, default=0.1)
    ap.add_argument("--n-treated", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    res = study(args.variants.split(","), args.reps, alpha=args.alpha, n_treated=args.n_treated)
    print(table(res, args.alpha))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(res, fh, indent=2)


if __name__ == "__main__":
    main()
