"""Diagnose branded search's no-lift credit in the structural model (issue 13).

On study worlds (``study_structural.WORLDS``; default s0 daily, s4, s5) fits the model on the
business-as-usual panel with no lift and prints, for branded search:

* the truth, the estimate and its 90% interval; the prior sd and the posterior of its pooled direct
  coefficient (identification report) and what the shape draws do (decay, half-saturation, exponent);
* least-squares contributions on the model's own projected columns (the fixed block profiled out) at
  the mode's shapes and at the shape nearest the world's truth, with the demand proxy replaced by:
  the model's query columns (as fitted), the queries with their coefficient fixed at the world's
  signups per organic query (1 / QUERIES_PER_SIGNUP), the noise-free queries, and the world's true
  organic demand (the oracle). The term whose replacement removes the bias is the one carrying it.

Run: ``nice -n 10 python benchmarks/diagnose_brand.py [--worlds "s0 daily" "s4 brand truly weak"]``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from study_structural import WORLDS, model_panel  # noqa: E402

from allocation.structural import StructuralModel  # noqa: E402
from allocation.structural_inputs import demand_proxy  # noqa: E402
from causal.graph import default_graph, joint_controls, normalise  # noqa: E402
from causal.world import World  # noqa: E402
from causal.world_params import QUERIES_PER_SIGNUP, channel_table  # noqa: E402


def _ls(D: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(D, y, rcond=None)[0]


def diagnose(name: str, **model_kw) -> dict:
    spec = next(w for w in WORLDS if w.name == name)
    world = World(spec.n_geos, spec.n_days, seed=spec.seed, **spec.options)
    clusters = dict(zip(world.clusters()["geo"], world.clusters()["cluster"]))
    panel = model_panel(spec, world.panel())
    run = world.run()
    truth = world.true_contributions()
    graph = normalise(default_graph(panel.channels, panel.y), panel.channels, panel.y)
    controls = joint_controls(graph, panel.channels, panel.covariates)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = StructuralModel(
            controls=controls, clusters=clusters, graph=graph, confidence=0.9, **model_kw
        )
        m.fit(panel)
    k = m.channels_.index("brand_search")
    row = m.contributions_.set_index("channel").loc["brand_search"]
    out = {"world": name, "truth": truth["brand_search"], "est": row["total"]}
    print(f"\n== {name}: brand truth {truth['brand_search']:,.0f}")
    print(
        f"   estimate {row['total']:,.0f} ({row['total'] / truth['brand_search']:.2f}x) "
        f"[{row['lo'] / truth['brand_search']:.2f}, {row['hi'] / truth['brand_search']:.2f}]x"
    )
    ident = m.identification_["brand_search"]
    print(f"   identification: post sd / prior sd {ident['posterior_sd_over_prior_sd']:.2f}")
    th, combos = m.draws_["theta"], m.draws_["shape"]
    g = th[:, m._ix["gamma"][k]]
    print(
        f"   prior tau (gamma, per unit size) {m._tau_k[k]:.2f}; mode gamma per cluster",
        np.round(m.uncal_mean_[m._ix["gamma"][k]], 2),
        "draw mean",
        np.round(g.mean(0), 2),
        "sd",
        np.round(g.std(0), 2),
        "robust scale",
        np.round(m.robust_scale_[m._ix["gamma"][k]], 2),
    )
    # The world's true beta per unit size per cluster (in the world's spend units, K=1000).
    beta_true = {
        c: float(world.params["brand_search"]["beta"][world.cluster_of == i][0])
        for i, c in enumerate(["NA", "LATAM", "EMEA", "APAC"])
    }
    print("   world beta per cluster", beta_true, "K", channel_table("brand_search")[2])
    shapes = [m.grid_["brand_search"][j] for j in combos[:, k]]
    dec = np.array([s.decay for s in shapes])
    hs = np.array([s.half_saturation for s in shapes])
    ex = np.array([s.shape for s in shapes])
    mode = m.grid_["brand_search"][m.mode_[k]]
    print(f"   mode shape {mode}; draws decay {np.unique(dec, return_counts=True)}")
    print(
        f"   draws K {np.unique(np.round(hs), return_counts=True)} n {np.unique(ex, return_counts=True)}"
    )
    contrib = m._contrib_draws[:, k].sum(axis=1)
    for sh in sorted(set(zip(dec, np.round(hs), ex))):
        sel = (dec == sh[0]) & (np.round(hs) == sh[1]) & (ex == sh[2])
        if sel.sum() >= 10:
            print(
                f"     shape {sh}: {sel.sum()} draws, contribution {contrib[sel].mean() / truth['brand_search']:.2f}x"
            )

    # Least squares on the projected columns, cluster-split channel features.
    X, nb = m._X, m._nb
    yv = X[:, 0].astype(float)
    qcols = X[:, 1:nb].astype(float)
    cols = m._cols(m.mode_)
    # nearest grid shape to the truth (decay .1, K 1000 in spend per unit size, n 1)
    grid = m.grid_["brand_search"]
    j_true = int(
        np.argmin(
            [
                abs(s.decay - 0.1) + abs(np.log(s.half_saturation / 1000)) + abs(s.shape - 1)
                for s in grid
            ]
        )
    )
    size = m.size_.to_numpy()
    # projection of raw columns on the model's fixed block: reuse the model's projector through refit of the block
    from allocation.fixed_effects import fixed_block

    cidx = m.cluster_idx_
    proj = fixed_block(panel, controls, cidx, m._C, fourier=m.fourier, holdout=0).projector(
        np.ones(m._T * m._G, dtype=bool)
    )

    def P(a):
        return proj.resid(np.asarray(a, float).reshape(-1, 1))[:, 0]

    # the world's arrays in the panel's geo order (the panel sorts its geos)
    order = [world.geos.index(g) for g in m.geos_]
    med = sum(run.mediated_queries.values())[:, order]
    Qtrue_noise_free = (QUERIES_PER_SIGNUP * run.organic[:, order] + med) / size
    organic = run.organic[:, order] / size
    variants = {
        "model's query columns": qcols,
        "query columns, noise-free queries": np.column_stack(
            [P(c) for c in demand_proxy(Qtrue_noise_free)]
        ),
        "true organic demand": P(organic)[:, None],
    }
    for brand_at in ("mode", "truth-nearest"):
        c2 = cols.copy()
        if brand_at == "truth-nearest":
            c2[k] = nb + k * m._n_cand + j_true
        feats = m._split(X[:, c2].astype(float))
        unit = np.array(
            [
                m._unit[kk][
                    (m.mode_ if brand_at == "mode" else c2 - nb - np.arange(m._K) * m._n_cand)[kk]
                ]
                for kk in range(m._K)
            ]
        )

        def brand_contrib(coef, unit=unit):
            per = coef.reshape(m._C, m._K)  # cluster-split: cluster-major blocks of K
            return float(sum(per[c, k] * unit[k][cidx == c].sum() for c in range(m._C)))

        for label, D0 in variants.items():
            D = np.column_stack([D0, feats])
            full = _ls(D, yv)
            coef = full[D0.shape[1] :]
            # iid standard error of the brand contribution (the signups residual is nearly white)
            res = yv - D @ full
            cov = np.linalg.pinv(D.T @ D) * float(res @ res) / (len(yv) - D.shape[1])
            gvec = np.zeros(D.shape[1])
            for c in range(m._C):
                gvec[D0.shape[1] + c * m._K + k] = unit[k][cidx == c].sum()
            se = float(np.sqrt(gvec @ cov @ gvec))
            print(
                f"   LS brand at {brand_at} shape, demand = {label}: {brand_contrib(coef) / truth['brand_search']:.2f}x (se {se / truth['brand_search']:.2f}x)"
            )
        # kappa fixed at the truth (1/3 per organic query; mediated queries convert at 0.5 but the
        # mediated channels' own coefficients absorb the difference)
        ykap = yv - qcols[:, 0] / QUERIES_PER_SIGNUP
        coef = _ls(feats, ykap)
        print(
            f"   LS brand at {brand_at} shape, queries' coefficient fixed at 1/3: {brand_contrib(coef) / truth['brand_search']:.2f}x"
        )
        # fitted total query coefficient
        cq = _ls(np.column_stack([qcols, feats]), yv)[: qcols.shape[1]]
        print(f"     (fitted sum of query coefficients {cq.sum():.3f} vs 1/3)")
    return out


def query_shares() -> None:
    """Per study world (no lift): the share of branded search's within-market log-spend variance its
    queries explain, the quantity the model compares with ``QUERY_BOUND``."""
    import allocation.structural_inference as inference

    bound, inference.QUERY_BOUND = inference.QUERY_BOUND, -1.0
    try:
        for spec in WORLDS:
            if not spec.queries:
                continue
            world = World(spec.n_geos, spec.n_days, seed=spec.seed, **spec.options)
            clusters = dict(zip(world.clusters()["geo"], world.clusters()["cluster"]))
            panel = model_panel(spec, world.panel())
            graph = normalise(default_graph(panel.channels, panel.y), panel.channels, panel.y)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                m = StructuralModel(
                    controls=joint_controls(graph, panel.channels, panel.covariates),
                    clusters=clusters,
                    graph=graph,
                    n_draws=10,
                ).fit(panel)
            share = next(iter(m._query_bound.values()))
            print(f"{spec.name}: queries explain {share:.2f} (bound {bound})")
    finally:
        inference.QUERY_BOUND = bound


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--worlds", nargs="*", default=["s0 daily", "s4 brand truly weak", "s5 brand truly strong"]
    )
    ap.add_argument(
        "--shares", action="store_true", help="only the query shares of the study worlds"
    )
    args = ap.parse_args(argv)
    if args.shares:
        query_shares()
        return
    for w in args.worlds:
        diagnose(w)


if __name__ == "__main__":
    main()
