"""The design search on a Dask cluster (joblib's Dask backend) gives the local result."""

from __future__ import annotations

import pytest

from causal.panel import load_panel
from experiments.design import design_experiment

distributed = pytest.importorskip("distributed")


def test_dask_cluster_equals_local_run(small_world):
    panel = load_panel(small_world[1])
    kw = dict(
        n_treated=(2, 2),
        durations=(14,),
        effect_sizes=(0, 0.1, 0.3),
        n_windows=5,
        n_screen_windows=2,
        n_finalists=4,
        method="matched",
    )
    local = design_experiment(panel, **kw).to_dict()
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        remote = design_experiment(panel, scheduler=cluster.scheduler_address, **kw).to_dict()
    assert remote == local
