"""Time the default world (50 geos, 730 days) against a plain numpy AR(1) panel of the same size.

Run: python benchmarks/bench_simulate.py
"""

from __future__ import annotations

import time

import numpy as np

from causal.world_io import simulate, to_weekly


def _plain_panel(seed: int) -> np.ndarray:
    # The named alternative: the simplest autocorrelated panel of the same shape, no mechanisms.
    rng = np.random.default_rng(seed)
    e = rng.normal(size=(730, 50))
    out = np.empty_like(e)
    out[0] = e[0]
    for t in range(1, 730):
        out[t] = 0.8 * out[t - 1] + e[t]
    return 300 * np.exp(0.03 * out)


def main() -> None:
    t0 = time.perf_counter()
    panel, truth = simulate(seed=0)
    world_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    _plain_panel(0)
    plain_s = time.perf_counter() - t0
    print(f"default world with truth: {world_s:.2f} s ({len(panel):,} rows); target < 10 s")
    print(f"plain AR(1) panel: {plain_s:.3f} s; ratio world/plain = {world_s / plain_s:.0f}x")
    # The issue-13 study options cost no more than the default world.
    t0 = time.perf_counter()
    daily, truth = simulate(n_days=728, seed=0, demand_following=1.0, brand_spend_noise=0.3)
    study_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    to_weekly(daily, truth)
    weekly_s = time.perf_counter() - t0
    print(
        f"study world (728 days, confounding options): {study_s:.2f} s; summed to weeks: {weekly_s:.2f} s"
    )


if __name__ == "__main__":
    main()
