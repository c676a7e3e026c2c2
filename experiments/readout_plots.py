"""The views of a :class:`~experiments.readout_result.Readout` (its ``plot`` method draws them).

Every view draws on the given axes (or a new figure) and returns ``(fig, ax)``; nothing here
shows a figure or computes a statistic.
"""

from __future__ import annotations

from typing import Any


def plot_readout(r: Any, *, kind: str = "counterfactual", ax=None):
    """Draw one view of readout ``r``: ``counterfactual``, ``incremental``, ``cumulative``,
    ``placebo`` or ``weights``; returns ``(fig, ax)``."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(9, 4))
    else:
        fig = ax.figure
    from matplotlib.ticker import FuncFormatter

    s = r.series
    test = s[s["period"] == "test"]
    start = test.index[0]
    level = f"{r.confidence:.0%}"
    thousands = FuncFormatter(lambda v, _: f"{v:,.0f}")
    if kind == "counterfactual":
        ax.plot(
            s.index,
            s["observed"],
            color="black",
            lw=1.2,
            label=f"observed {r.outcome} (total)",
        )
        ax.plot(
            s.index,
            s["counterfactual"],
            color="#2f5fa7",
            lw=1.2,
            ls="--",
            label="counterfactual (would have happened anyway)",
        )
        ax.fill_between(
            test.index,
            test["lower"],
            test["upper"],
            color="#2f5fa7",
            alpha=0.2,
            label=f"{level} band",
        )
        ax.axvspan(start, test.index[-1], color="#f2c14e", alpha=0.12, label="test window")
        ax.set_ylabel(f"{r.outcome} per {r.period_name}, treated total")
        ax.yaxis.set_major_formatter(thousands)
        ax.legend(loc="upper left", fontsize=8)
        ax.set_title(f"Observed vs counterfactual {r.outcome} in the treated geos ({r.estimator})")
    elif kind == "incremental":
        ax.bar(
            test.index,
            test["incremental"],
            color="#2f5fa7",
            label=f"incremental {r.outcome}",
        )
        # Pointwise band of the gap: observed minus the counterfactual band (no new statistic).
        ax.vlines(
            test.index,
            test["observed"] - test["upper"],
            test["observed"] - test["lower"],
            color="#1d2430",
            lw=0.8,
            label=f"{level} pointwise band",
        )
        ax.axhline(0, color="black", lw=0.8)
        ax.set_ylabel(f"incremental {r.outcome} per {r.period_name}")
        ax.yaxis.set_major_formatter(thousands)
        ax.legend(loc="best", fontsize=8)
        ax.set_title(f"Incremental {r.outcome} per {r.period_name} during the test ({r.estimator})")
    elif kind == "cumulative":
        ax.plot(
            test.index,
            test["cumulative_incremental"],
            color="#2f5fa7",
            marker="o",
            ms=3,
            label=f"cumulative incremental {r.outcome}",
        )
        # A line from lo to hi (not an error bar): a conformal interval may exclude the estimate.
        ax.vlines(
            [test.index[-1]],
            *r.incremental_ci,
            color="#a12",
            lw=2,
            label=f"total, {level} interval",
        )
        ax.axhline(0, color="black", lw=0.8)
        ax.set_ylabel(f"cumulative incremental {r.outcome}")
        ax.yaxis.set_major_formatter(thousands)
        ax.legend(loc="best", fontsize=8)
        ax.set_title(f"Cumulative incremental {r.outcome} over the test ({r.estimator})")
    elif kind == "placebo":
        res = r.placebo.get("space")
        if res is None or len(res.scores) == 0:
            raise ValueError("no placebo-in-space results in this readout (placebos=False?)")
        ax.hist(
            res.scores,
            bins=min(30, max(5, len(res.scores) // 2)),
            color="#9aa7b8",
            label="placebo geos (each donor as if treated)",
        )
        ax.axvline(res.actual_score, color="#a12", lw=2, label="treated geos")
        ax.set_xlabel("test-window gap / pre-period RMSE")
        ax.set_ylabel("number of placebo geos")
        ax.legend(
            fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0)
        )  # outside: never over a bar
        ax.set_title(f"Placebo in space: treated score against {len(res.scores)} placebos")
    elif kind == "weights":
        if r.weights is None:
            raise ValueError(f"estimator '{r.estimator}' has no donor weights")
        w = r.weights[r.weights.abs() > 1e-4].sort_values()
        bars = ax.barh(w.index.astype(str), w.to_numpy(), color="#2f5fa7")
        from matplotlib.ticker import PercentFormatter

        ax.bar_label(bars, labels=[f"{v:.1%}" for v in w.to_numpy()], fontsize=7, padding=2)
        ax.margins(x=0.12)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlabel("donor weight (share of the synthetic control)")
        ax.set_title(f"Donor weights ({r.estimator})")
    else:
        raise ValueError(f"unknown plot kind '{kind}'")
    if kind in ("counterfactual", "incremental", "cumulative"):
        ax.set_xlabel("date")
        # Rotate this axis only (fig.autofmt_xdate would strip labels off other axes of a grid).
        ax.tick_params(axis="x", labelrotation=30)
    return fig, ax
