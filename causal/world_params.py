"""The simulated world's parameters: clusters, channels' true curves, organic demand's shape.

Fixed numbers, so a world's truth is stable across releases; :mod:`causal.world` draws around them.
"""

from __future__ import annotations

import numpy as np

CLUSTERS = ("NA", "LATAM", "EMEA", "APAC")
_CLUSTER_PREFIX = {"NA": "NA", "LATAM": "LA", "EMEA": "EM", "APAC": "AP"}
_CLUSTER_SHARE = np.array([0.30, 0.24, 0.28, 0.18])
EXOGENOUS_CHANNELS = ("nonbrand_search", "social", "programmatic", "ctv")
DEFAULT_CHANNELS = ("brand_search", *EXOGENOUS_CHANNELS)
MEDIATED_CHANNELS = ("ctv", "programmatic")

# Base daily organic signups of a market of size one.
BASE_SIGNUPS = 300.0
# Branded queries per organic signup, and the share of mediated queries that sign up.
QUERIES_PER_SIGNUP = 3.0
MEDIATED_CONVERSION = 0.5

# Channel parameters for a market of size one (spend per day in currency units),
# then multiplied per cluster by _CLUSTER_FACTOR so channels respond differently.
_CHANNEL = {
    #                  level   beta   K      shape decay
    "brand_search": (None, 25.0, 1000.0, 1.0, 0.10),
    "nonbrand_search": (2500.0, 60.0, 3000.0, 1.0, 0.20),
    "social": (2000.0, 45.0, 2500.0, 1.0, 0.40),
    "programmatic": (1500.0, 25.0, 2000.0, 1.0, 0.50),
    "ctv": (3000.0, 40.0, 4000.0, 1.2, 0.70),
    "partnerships": (800.0, 15.0, 1000.0, 1.0, 0.30),
}
# Mediated branded queries per day at saturation, and their half-saturation.
_MEDIATED = {"ctv": (80.0, 4000.0), "programmatic": (40.0, 2000.0)}
# Cost per branded query (clicks times cost per click) by cluster.
_CPC = {"NA": 0.35, "LATAM": 0.18, "EMEA": 0.30, "APAC": 0.25}
# Per-cluster multipliers of beta (response strength), fixed so the truth is stable.
_CLUSTER_FACTOR = {
    "NA": {
        "brand_search": 1.0,
        "nonbrand_search": 1.0,
        "social": 0.8,
        "programmatic": 1.0,
        "ctv": 1.2,
        "partnerships": 1.0,
    },
    "LATAM": {
        "brand_search": 0.8,
        "nonbrand_search": 0.8,
        "social": 1.4,
        "programmatic": 0.9,
        "ctv": 0.7,
        "partnerships": 1.3,
    },
    "EMEA": {
        "brand_search": 1.1,
        "nonbrand_search": 1.1,
        "social": 0.9,
        "programmatic": 1.2,
        "ctv": 1.0,
        "partnerships": 0.8,
    },
    "APAC": {
        "brand_search": 0.9,
        "nonbrand_search": 1.2,
        "social": 1.1,
        "programmatic": 0.8,
        "ctv": 0.9,
        "partnerships": 1.1,
    },
}
_YEARLY_PHASE = {"NA": 15.0, "LATAM": 197.0, "EMEA": 15.0, "APAC": 100.0}
_GROWTH = {"NA": 0.06, "LATAM": 0.15, "EMEA": 0.08, "APAC": 0.12}
_WEEKLY = np.array([0.95, 0.93, 0.95, 0.98, 1.03, 1.09, 1.07])  # Monday..Sunday
_YEARLY_AMPLITUDE = 0.08
_PRICE_ELASTICITY = 0.6
_BASE_PRICE = 9.99

EXPERIMENT_KINDS = {"go_dark": 0.0, "holdback": 0.5, "heavy_up": 2.0}


# Extra upper-funnel channels (``World(extra_channels=n)``: ``upper_1``..``upper_n``), for scale
# benchmarks with more channels: moderate, slow-decaying display/video-like channels.
EXTRA_PREFIX = "upper_"
_EXTRA = (1200.0, 18.0, 1600.0, 1.0, 0.5)


def channel_table(ch: str) -> tuple:
    """(level, beta, half-saturation, shape, decay) of a channel, extra upper-funnel channels included."""
    if ch in _CHANNEL:
        return _CHANNEL[ch]
    i = int(ch[len(EXTRA_PREFIX) :])
    # Each extra channel a little different, so their curves are not interchangeable.
    level, beta, K, shape, decay = _EXTRA
    return (
        level * (1 + 0.15 * (i % 3)),
        beta * (1 - 0.1 * (i % 4)),
        K,
        shape,
        decay - 0.05 * (i % 3),
    )


def cluster_factor(cluster: str, ch: str) -> float:
    return _CLUSTER_FACTOR[cluster].get(ch, 1.0)


def _channel_decay(ch: str, cluster: str) -> float:
    # CTV carries over a little longer in NA and EMEA (longer-form viewing).
    extra = 0.05 if ch == "ctv" and cluster in ("NA", "EMEA") else 0.0
    return channel_table(ch)[4] + extra


def _ar1(innov: np.ndarray, rho: float) -> np.ndarray:
    """AR(1) along axis 0 started from its stationary distribution."""
    out = np.empty_like(innov)
    out[0] = innov[0] / np.sqrt(1 - rho**2)
    for t in range(1, innov.shape[0]):
        out[t] = rho * out[t - 1] + innov[t]
    return out
