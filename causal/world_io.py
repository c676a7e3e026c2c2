"""Outputs of the simulated world: the weekly panel, the cluster table, and the ``simulate`` entry point."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from causal.errors import ConfigError
from causal.world import Experiment, World


def truth_clusters(truth: dict) -> pd.DataFrame:
    """The ``geo, cluster`` table of a world from its truth (what ``clusters.csv`` holds).

    Same rows as :meth:`World.clusters`, for code that holds only ``truth.json``
    (e.g. ``liftlab simulate`` writing ``DIR/clusters.csv``).
    """
    return pd.DataFrame(
        {"geo": [g["geo"] for g in truth["geos"]], "cluster": [g["cluster"] for g in truth["geos"]]}
    )


def to_weekly(panel: pd.DataFrame, truth: dict | None = None) -> tuple[pd.DataFrame, dict | None]:
    """The same daily world summed to weeks, so a model runs on ``period: week``.

    Signups, spend and ``brand_queries`` are summed over each week; other
    numeric covariates (``launch``, ``competitor_price``) are averaged. A week
    is labelled by its first date. The truth's totals (contributions, spend,
    experiments' incremental signups) are sums over days and stay valid, so
    the truth is copied with ``period`` set to ``"week"``.

    Parameters
    ----------
    panel : DataFrame
        A daily panel from :meth:`World.panel` or :func:`simulate`.
    truth : dict or None

    Raises
    ------
    ConfigError
        When the days do not split into whole weeks (a partial last week would
        be a shorter period; simulate a multiple of 7 days, e.g. 728).
    """
    dates = pd.to_datetime(pd.Index(panel["date"].unique())).sort_values()
    if len(dates) % 7:
        raise ConfigError(
            f"{len(dates)} days do not split into whole weeks (the last week, from "
            f"{dates[len(dates) // 7 * 7].date()}, has {len(dates) % 7} days); simulate a multiple of 7 days"
        )
    week = (pd.to_datetime(panel["date"]) - dates[0]).dt.days // 7
    label = pd.Series(dates[::7].strftime("%Y-%m-%d"))
    summed = [
        "signups",
        *[c for c in panel if c.startswith("spend_")],
        *(["brand_queries"] if "brand_queries" in panel else []),
    ]
    averaged = [c for c in panel.columns if c not in ("date", "geo", *summed)]
    keys = [week.rename("_week"), panel["geo"]]
    out = panel[summed].groupby(keys, sort=True).sum()
    if averaged:
        out = out.join(panel[averaged].groupby(keys, sort=True).mean().round(4))
    out = out.reset_index()
    out.insert(0, "date", label.to_numpy()[out.pop("_week").to_numpy()])
    out = out[["date", "geo", *[c for c in panel.columns if c not in ("date", "geo")]]]
    if truth is None:
        return out, None
    return out, {**truth, "period": "week", "n_periods": len(dates) // 7}


def simulate(
    n_geos: int = 50,
    n_days: int = 730,
    *,
    seed: int = 0,
    start: str = "2024-01-01",
    experiments: Sequence[Experiment | str] = (),
    partnerships: bool = False,
    **options,
) -> tuple[pd.DataFrame, dict]:
    """Simulate the default world: the observed long panel and its truth.

    Parameters
    ----------
    n_geos, n_days, seed, start, partnerships
        See :class:`World`.
    **options
        The other options of :class:`World` (``brand_spend_noise``,
        ``demand_following``, ``brand_strength``, ``observe_queries``).
    experiments : sequence of Experiment or str
        Interventions applied to the observed panel; strings are parsed by
        :meth:`Experiment.parse`.

    Returns
    -------
    panel : DataFrame
        Long panel, columns ``date, geo, signups, spend_<channel>..., brand_queries,
        launch, competitor_price``.
    truth : dict
        Contents of ``truth.json``.

    Examples
    --------
    >>> panel, truth = simulate(n_geos=8, n_days=60, seed=1)
    >>> panel.shape[0]
    480
    """
    world = World(n_geos, n_days, seed=seed, start=start, partnerships=partnerships, **options)
    exps = [Experiment.parse(e) if isinstance(e, str) else e for e in experiments]
    return world.simulate(exps)
