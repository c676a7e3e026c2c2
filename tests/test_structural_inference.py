"""The structural model's robust inference pieces: dependence groups and the sandwich tempering."""

import numpy as np

from allocation.structural_inference import _sandwich_inflation
from allocation.structural_inputs import block_index, demand_proxy


def test_blocks_are_eight_weeks_and_a_short_tail_joins_the_last():
    b = block_index(730, "day")
    assert b[0] == 0 and b[55] == 0 and b[56] == 1
    # 730 = 13 x 56 + 2: the two-day tail joins block 12 instead of being a block of its own.
    assert b.max() == 12 and (b == 12).sum() == 58
    assert block_index(104, "week").max() == 12
    assert block_index(5, "week").tolist() == [0] * 5


def _panel_design(rng, T=336, G=12, C=2, shared=0.0, rho=0.0):
    """Rows date-major (T x G); a regressor and residuals with cluster-shared AR(1) shocks."""
    x = rng.normal(size=(T // 28, C)).repeat(28, axis=0)[:, np.arange(G) % C]  # 4-week blocks
    x = x + 0.3 * rng.normal(size=(T, G))
    e = rng.normal(size=(T, G))
    u = np.zeros((T, C))
    for t in range(1, T):
        u[t] = rho * u[t - 1] + rng.normal(size=C)
    e = e + shared * u[:, np.arange(G) % C]
    groups = (block_index(T, "day")[:, None] * C + (np.arange(G) % C)[None, :]).ravel()
    D = x.reshape(-1, 1)
    coef = np.linalg.lstsq(D, e.ravel(), rcond=None)[0]
    r = e.ravel() - D @ coef
    return D, r, float(r @ r) / (len(r) - 1), groups


def test_sandwich_inflation_is_near_one_for_iid_and_large_for_shared_persistent_shocks():
    rng = np.random.default_rng(0)
    iid = [_sandwich_inflation(*_panel_design(rng), np.array([True])) for _ in range(5)]
    assert 1.0 <= np.mean(iid) < 1.6
    dep = _sandwich_inflation(*_panel_design(rng, shared=1.0, rho=0.95), np.array([True]))
    # A lag-one AR(1) correction of the pooled residual would say about (1 + rho') / (1 - rho') with
    # rho' the mixture's small lag-one correlation; the shocks shared by a cluster's geos and
    # persisting for weeks carry far less information than that.
    assert dep > 5 * np.mean(iid)


def test_demand_proxy_future_smoothings_exclude_the_current_period():
    Q = np.zeros((10, 2))
    Q[4] = 1.0  # a query spike in period 4
    cols = demand_proxy(Q)
    past, future = cols[:5], cols[5:]
    assert len(future) == 3
    for f in future:
        assert f[4:].sum() == 0.0  # the spike shows up only in periods before it
        assert f[3, 0] > 0
    assert past[0][4, 0] == 1.0 and past[0][3, 0] == 0.0
