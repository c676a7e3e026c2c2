"""The structural model's curve plot marks each lift at the spend it tested (issue 18)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from allocation.calibration_lifts import Lift  # noqa: E402
from allocation.structural import StructuralModel  # noqa: E402
from causal.panel import load_panel  # noqa: E402
from causal.world import Experiment, World  # noqa: E402


def test_lift_is_drawn_at_its_spend_on_the_all_markets_scale():
    world = World(n_geos=12, n_days=240, seed=3)
    treated = tuple(world.geos[:3])
    panel, truth = world.simulate([Experiment("ctv", treated, "2024-07-01", "2024-07-28", 0.0)])
    exp = truth["experiments"][0]
    inc = float(exp["true_incremental"])
    in_test = panel[panel["geo"].isin(treated) & panel["date"].between("2024-07-01", "2024-07-28")]
    before = panel[panel["geo"].isin(treated) & panel["date"].between("2024-06-03", "2024-06-30")]
    delta = float(in_test["spend_ctv"].sum() - before["spend_ctv"].sum())
    lift = Lift("ctv", treated, "2024-07-01", "2024-07-28", inc, (inc * 1.5, inc * 0.5), 0.9, delta)
    model = StructuralModel(n_draws=40).fit(load_panel(panel), lifts=[lift])
    fig, ax = model.plot("ctv")
    labels = ax.get_legend_handles_labels()[1]
    assert any(label.startswith("lift ") for label in labels)
    # The filled marker sits at the test's own spend, scaled to all markets: a go-dark is near zero.
    xs = [line.get_xdata()[0] for line in ax.lines if line.get_marker() == "o"]
    assert len(xs) == 2 and min(xs) < 0.2 * max(xs) and np.isfinite(xs).all()
    plt.close(fig)
