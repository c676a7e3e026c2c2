"""World(extra_channels=n): more upper-funnel channels without moving the default channels' draws."""

import numpy as np
import pytest

from causal.errors import ConfigError
from causal.world import World


def test_extra_channels_keep_the_default_draws_and_add_curves():
    base = World(8, 56, seed=3)
    more = World(8, 56, seed=3, extra_channels=2)
    assert more.channels == base.channels + ("upper_1", "upper_2")
    for ch in base.channels:
        if ch != "brand_search":
            np.testing.assert_array_equal(base.planned[ch], more.planned[ch])
    assert not np.allclose(more.planned["upper_1"], more.planned["upper_2"])
    truth = more.true_contributions()
    assert truth["upper_1"] > 0 and truth["upper_2"] > 0
    panel = more.panel()
    assert {"spend_upper_1", "spend_upper_2"} <= set(panel.columns)


@pytest.mark.parametrize("bad", [-1, 1.5, "2"])
def test_extra_channels_must_be_a_count(bad):
    with pytest.raises(ConfigError, match="extra_channels"):
        World(8, 56, extra_channels=bad)
