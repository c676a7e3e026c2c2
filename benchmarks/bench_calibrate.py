"""Fit + calibration of the default world, and the must-show numbers against the truth.

Scenario: causal.world.World(seed=0) (50 geos, 730 days, five channels) with two
experiments run inside the world from 2025-02-03, on disjoint geos: CTV go-dark
in 12 geos for 6 weeks, branded-search go-dark in 19 geos for 8 weeks. Each is
read out by experiments.readout.read_out (synthetic control, the 19 untreated
geos as controls); the curves are fitted on the observed panel and calibrated
on the two readouts.

Timing: ``ResponseModel.fit`` (staged coordinate descent over each channel's
adstock grid, then its saturation grid, fixed block profiled out in closed
form) + ``calibrate``, against two named alternatives in the same process on
the same data: a *joint* grid (every adstock x saturation pair per channel in
each sweep) and a dense QR projection of the fixed block. Run with
``OMP_NUM_THREADS=2 python benchmarks/bench_calibrate.py``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from allocation.calibration import Lift, calibrate
from allocation.mmm import ChannelCurve, ResponseModel
from causal.panel import load_panel
from causal.world import Experiment, World


def scenario(seed: int = 0):
    world = World(seed=seed)
    g = world.geos
    ctv_geos = tuple(g[2::4])
    others = [x for x in g if x not in ctv_geos]
    bs_geos = tuple(others[::2])
    exps = [Experiment("ctv", ctv_geos, "2025-02-03", "2025-03-16", 0.0, name="ctv go-dark"),
            Experiment("brand_search", bs_geos, "2025-02-03", "2025-03-30", 0.0, name="brand_search go-dark")]
    panel, truth = world.simulate(exps)
    return load_panel(panel), truth, exps, [x for x in g if x not in ctv_geos + bs_geos]


def readout_lifts(panel, exps, control):
    from experiments.readout import read_out

    lifts = []
    for e in exps:
        r = read_out(panel, list(e.geos), (e.start, e.end), control=control, channel=e.channel, seed=0, placebos=False)
        lifts.append(Lift.from_dict(r.to_dict(), e.name))
    return lifts


class JointGridModel(ResponseModel):
    """The named alternative: each sweep tries every adstock x saturation pair of a channel."""

    def _search(self, d, rows):
        proj = d.Z.projector(rows)
        yv = (d.y / d.size).ravel()[rows]
        yr = proj.resid(yv)
        curves, feats = {}, {}
        grids = {}
        for ch, x in d.spend.items():
            pos = x[x > 0] / np.broadcast_to(d.size, x.shape)[x > 0]
            ads, sats = self._candidates(float(pos.mean()))
            grids[ch] = [ChannelCurve(ch, a, f, p) for a in ads for f, p in sats]
            curves[ch] = grids[ch][0]
            feats[ch] = proj.resid(curves[ch].saturate(curves[ch].carry(x / d.size)).ravel()[rows])
        for _ in range(self.n_sweeps):
            for ch in d.spend:
                others = [feats[o] for o in d.spend if o != ch]
                best = np.inf
                for cand in grids[ch]:
                    f = proj.resid(cand.saturate(cand.carry(d.spend[ch] / d.size)).ravel()[rows])
                    F = np.column_stack([*others, f])
                    r = yr - F @ np.linalg.lstsq(F, yr, rcond=None)[0]
                    if r @ r < best:
                        best, curves[ch], feats[ch] = float(r @ r), cand, f
        return curves


class DenseQRModel(ResponseModel):
    """The second alternative: the fixed block profiled out by a dense QR, as a generic panel needs."""

    def _fixed_block(self, *args):
        block = super()._fixed_block(*args)
        block.fast = False
        return block


def main() -> None:
    warnings.simplefilter("ignore")
    panel, truth, exps, control = scenario()
    t0 = time.perf_counter()
    lifts = readout_lifts(panel, exps, control)
    t_readout = time.perf_counter() - t0
    controls = ["launch", "competitor_price"]
    t0 = time.perf_counter()
    model = ResponseModel(controls=controls).fit(panel)
    result = calibrate(model, lifts)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    alt = JointGridModel(controls=controls).fit(panel)
    calibrate(alt, lifts)
    t_alt = time.perf_counter() - t0
    t0 = time.perf_counter()
    dense = DenseQRModel(controls=controls).fit(panel)
    calibrate(dense, lifts)
    t_dense = time.perf_counter() - t0
    print(f"readouts (2, sc, no placebos): {t_readout:.1f} s")
    print(f"fit + calibration, default world: {t_ours:.1f} s; joint grid alternative: {t_alt:.1f} s; "
          f"ratio {t_alt / t_ours:.1f}x (R^2 {model.r2_:.4f} vs {alt.r2_:.4f})")
    print(f"closed-form fixed-block projection vs dense QR: {t_ours:.1f} s vs {t_dense:.1f} s, ratio "
          f"{t_dense / t_ours:.1f}x (same curves: {dense.curves_ == model.curves_})")
    for lf, t in zip(lifts, truth["experiments"]):
        print(f"lift {lf.name}: readout {lf.incremental:,.0f} [{lf.incremental_ci[0]:,.0f}, {lf.incremental_ci[1]:,.0f}], "
              f"truth {t['true_incremental']:,.0f}")
    print(f"{'channel':<16} {'truth':>10} {'uncalibrated':>13} {'ratio':>6} {'calibrated':>11} {'ratio':>6}")
    for ch, c in truth["contributions"].items():
        b, a = result.channels.loc[ch, "contribution_before"], result.channels.loc[ch, "contribution_after"]
        print(f"{ch:<16} {c:>10,.0f} {b:>13,.0f} {b / c:>6.2f} {a:>11,.0f} {a / c:>6.2f}")
    bt = model.backtest_
    print(f"backtest {bt.start}..{bt.end}: WAPE total {bt.wape_total:.2%}, per geo {bt.wape_geo:.2%}, "
          f"R^2 total {bt.r2_total:.3f}, bias {bt.bias_total:+.2%}")
    print(result.summary())


if __name__ == "__main__":
    main()
