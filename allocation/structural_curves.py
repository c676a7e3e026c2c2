"""curves.json from a fitted :class:`~allocation.structural.StructuralModel`: per-market lines, draws, aggregates."""

from __future__ import annotations

from typing import Any

import numpy as np

from causal import response as R

# The fitted model is passed in, not imported (allocation.structural imports this module): ``Model``.
Model = Any


def _r(v) -> list[float]:
    """Six significant digits: the draws dominate the file's size."""
    return [float(f"{x:.6g}") for x in np.asarray(v, float).ravel()]


def _hill_slope(x, beta, k, n) -> np.ndarray:
    """Steady-state marginal outcome per unit spend of a Hill curve (the curve core's derivative), vectorised."""
    return R.derivative(
        "hill", np.maximum(x, 1e-12), {"beta": beta, "half_saturation": k, "shape": n}
    )


def point_shapes(model: Model) -> tuple[np.ndarray, np.ndarray]:
    """Per channel the most frequent shape among the draws, and the draws that have it (mask (N, K))."""
    combos = model.draws_["shape"]
    point = np.array(
        [np.bincount(combos[:, k], minlength=model._n_cand).argmax() for k in range(model._K)]
    )
    return point, combos == point[None, :]


def lift_table(model: Model) -> list[dict]:
    """Per lift: measured, predicted without lifts, after, and leave-one-out (at the mode's shapes)."""
    out = []
    th, combos = model.draws_["theta"], model.draws_["shape"]
    z90 = 1.959963984540054
    for i, lf in enumerate(model.lifts_):
        row, val, sd = model._lift_rows[i]
        k = model.channels_.index(lf.channel)
        pred = np.einsum("np,pn->n", th, row[:, combos[:, k]])
        before = float(model.uncal_mean_ @ row[:, model.mode_[k]])
        others = [j for j in range(len(model.lifts_)) if j != i]
        mean, L, _ = model._posterior(model.mode_, others)
        rr = row[:, model.mode_[k]]
        v = np.linalg.solve(L, rr)
        zloo = (val - float(rr @ mean)) / np.sqrt(sd**2 + float(v @ v))
        same = any(model.lifts_[j].channel == lf.channel for j in others)
        out.append(
            {
                "name": lf.name,
                "source": lf.source,
                "channel": lf.channel,
                "start": lf.start,
                "end": lf.end,
                "n_geos": len(lf.treated),
                "spend_delta": lf.spend_delta,
                "measured": val,
                "ci_lo": lf.incremental_ci[0],
                "ci_hi": lf.incremental_ci[1],
                "sd": sd,
                "predicted_before": before,
                "predicted_after": float(pred.mean()),
                "predicted_loo": float(rr @ mean),
                "z_loo": float(zloo),
                "conflict": bool(same and abs(zloo) > z90),
                # whether the readout's first periods entered as a term on the carryover
                "early_window": None
                if model._early_rows[i] is None
                else [lf.early.start, lf.early.end],
            }
        )
    return out


def curves_dict(model: Model) -> dict:
    """The curves.json dict (INTERFACE keys kept; lines per channel and market)."""
    th, combos = model.draws_["theta"], model.draws_["shape"]
    N = len(th)
    a = (1 - model.confidence) / 2
    coef = model.total_coef(th)  # (N, K, C)
    point, has_point = point_shapes(model)
    contrib = model._contrib_draws  # (N, K, G)
    direct = model._line_contrib(th, combos, "direct")
    unc = model._line_contrib(model.uncal_mean_, model.mode_[None, :])[0]
    size = model.size_.to_numpy()
    q = model._quarter
    lifted = {lf.channel for lf in model.lifts_}
    lines, aggregates = [], []
    for k, ch in enumerate(model.channels_):
        shapes = model.grid_[ch]
        sh = shapes[point[k]]
        dec = np.array([shapes[j].decay for j in combos[:, k]])
        ks = np.array([shapes[j].half_saturation for j in combos[:, k]])
        ns = np.array([shapes[j].shape for j in combos[:, k]])
        beta_pt = coef[has_point[:, k], k].mean(axis=0)  # (C,)
        if k in getattr(model, "_capture_cond", {}):
            # Shapes weighed by the prior spread the draws over the grid, so the most frequent shape holds
            # a few draws: its line takes the coefficient that gives each cluster its posterior mean
            # contribution, not those few draws' mean.
            unit = model._unit[k][point[k]]
            mean_g = contrib[:, k].mean(axis=0)
            for c in range(model._C):
                members = model.cluster_idx_ == c
                denom = float(unit[members].sum())
                if denom > 0:
                    beta_pt[c] = float(mean_g[members].sum()) / denom
        x = model._spend[ch]
        cur = x[-q:].mean(axis=0)
        tot_sp = x.sum(axis=0)
        for g, geo in enumerate(model.geos_):
            c = model.cluster_idx_[g]
            s = size[g]
            b = float(beta_pt[c] * s)
            cd = contrib[:, k, g]
            lo, hi = np.quantile(cd, [a, 1 - a])
            mr_draws = _hill_slope(cur[g], coef[:, k, c] * s, ks * s, ns)
            sp = float(tot_sp[g]) or np.nan
            mean_c = float(cd.mean())
            lines.append(
                {
                    "name": ch,
                    "market": geo,
                    "cluster": model.geo_cluster_[geo],
                    "response": {
                        "form": "hill",
                        "beta": b,
                        "half_saturation": float(sh.half_saturation * s),
                        "shape": float(sh.shape),
                    },
                    "adstock": {"form": "geometric", "decay": float(sh.decay)},
                    "current_spend": float(cur[g]),
                    "min_spend": 0.0,
                    "max_spend": None,
                    "contribution": {"uncalibrated": float(unc[k, g]), "calibrated": mean_c},
                    "effect": {
                        "direct": float(direct[:, k, g].mean()),
                        "mediated": float((cd - direct[:, k, g]).mean()),
                        "total": mean_c,
                    },
                    "calibrated": ch in lifted,
                    "roas": {"calibrated": mean_c / sp if sp == sp else None},
                    "marginal_roas": {
                        "calibrated": float(
                            _hill_slope(cur[g], b, sh.half_saturation * s, sh.shape)
                        )
                    },
                    "intervals": {
                        "confidence": model.confidence,
                        "contribution": [float(lo), float(hi)],
                        "roas": [float(lo / sp), float(hi / sp)] if sp == sp else None,
                        "marginal_roas": _r(np.quantile(mr_draws, [a, 1 - a])),
                    },
                    "total_spend": float(tot_sp[g]),
                    "response_draws": {
                        "beta": _r(coef[:, k, c] * s),
                        "half_saturation": _r(ks * s),
                        "shape": _r(ns),
                    },
                    "adstock_draws": {"decay": _r(dec)},
                }
            )
        for c, name in enumerate(model.clusters_):
            m = model.cluster_idx_ == c
            S = float(size[m].sum())
            cd = contrib[:, k, m].sum(axis=1)
            lo, hi = np.quantile(cd, [a, 1 - a])
            aggregates.append(
                {
                    "name": ch,
                    "market": name,
                    "level": "cluster",
                    "response": {
                        "form": "hill",
                        "beta": float(beta_pt[c] * S),
                        "half_saturation": float(sh.half_saturation * S),
                        "shape": float(sh.shape),
                    },
                    "adstock": {"form": "geometric", "decay": float(sh.decay)},
                    "current_spend": float(cur[m].sum()),
                    "contribution": {
                        "uncalibrated": float(unc[k, m].sum()),
                        "calibrated": float(cd.mean()),
                    },
                    "effect": {
                        "direct": float(direct[:, k, m].sum(axis=1).mean()),
                        "mediated": float((cd - direct[:, k, m].sum(axis=1)).mean()),
                        "total": float(cd.mean()),
                    },
                    "intervals": {
                        "confidence": model.confidence,
                        "contribution": [float(lo), float(hi)],
                    },
                    "total_spend": float(tot_sp[m].sum()),
                }
            )
    df = model.contributions_.set_index("channel")
    totals = {}
    for ch, r in df.iterrows():
        sp = r["spend"] or np.nan
        totals[ch] = {
            "direct": r["direct"],
            "mediated": r["mediated"],
            "total": r["total"],
            "lo": r["lo"],
            "hi": r["hi"],
            "contribution_before": r["uncalibrated"],
            "contribution_after": r["total"],
            "contribution_after_lo": r["lo"],
            "contribution_after_hi": r["hi"],
            "spend": r["spend"],
            "roas_after": r["total"] / sp if sp == sp else None,
            "calibrated": bool(r["lifted"]),
        }
    lifts = lift_table(model)
    conflicts = [
        f"lift {r['name']} ({r['source']}) measured {r['measured']:,.0f} but the model calibrated on the "
        f"other {r['channel']} lifts predicts {r['predicted_loo']:,.0f} (z = {r['z_loo']:.2f})"
        for r in lifts
        if r["conflict"]
    ]
    sy, ry, vy = model.noise_["y"]
    return {
        "outcome": model.outcome_,
        "period": model.period_,
        "model": "structural",
        "channels": lines,
        "aggregates": aggregates,
        "draws": {"n": int(N), "seed": int(model.seed)},
        "identification": model.identification_,
        "totals": totals,
        "lifts": lifts,
        "conflicts": conflicts,
        "backtest": None,
        "fit": {
            "controls": list(model.controls_),
            "mediator": model.mediator if model.has_mediator_ else None,
            "mediator_proxy": getattr(model, "mediator_proxy_", None),
            "mediated_channels": list(model.mediated_),
            "demand_channels_unadjusted": list(model.demand_),
            "clusters": [c for c in model.clusters_ if c is not None],
            "residual_autocorrelation": {
                "signups": ry,
                **({"queries": model.noise_["q"][1]} if "q" in model.noise_ else {}),
            },
            "kappa": _r(th[:, model._ix["kappa"]].sum(axis=1).mean(axis=0))
            if model.has_mediator_
            else None,
            "shape_effective_draws": model.shape_ess_,
            "prior_on": model.prior_on,
            "shape_prior": model.shape_prior,
            "dates": [model.dates_[0].date().isoformat(), model.dates_[-1].date().isoformat()],
        },
        "confidence": model.confidence,
        "notes": list(model.notes_),
    }
