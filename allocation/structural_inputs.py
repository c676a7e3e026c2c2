"""Inputs of the structural model: the shape grid, market clusters, the graph's roles, the fixed block.

Split out of :mod:`allocation.structural` (one job each): what the model is fitted on, before any
inference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from causal import response as R
from causal.errors import ConfigError, DataError
from causal.panel import SPEND_PREFIX, Panel
from causal.response import geometric_adstock

DECAYS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
HALF_SATURATION = (0.5, 1.0, 2.0, 4.0)  # times the channel's mean positive spend per unit size
SHAPES = (1.0, 1.25, 1.5)  # Hill exponents; below one the marginal return at zero spend is infinite
#: What the channels' coefficient prior is on: the Hill coefficient (the default; its marginal likelihood
#: favours flat shapes) or the marginal return at mean spend (the same for every shape).
PRIOR_ON = ("coefficient", "marginal_return")
#: The prior over the shape grid's points: every point equally likely (the default), or Meridian's
#: default Hill priors for paid media (``shape_log_prior``).
SHAPE_PRIORS = ("uniform", "meridian")
# Meridian's defaults (google/meridian, model/prior_distribution.py): the half-saturation ``ec_m`` is
# TruncatedNormal(0.8, 0.8) on [0.1, 10] in units of the channel's typical spend, the Hill exponent
# ``slope_m`` is Deterministic(1.0).
MERIDIAN_HALF_SATURATION = (0.8, 0.8, 0.1, 10.0)  # mean, sd, low, high
MERIDIAN_EXPONENT = 1.0
CAPTURE_DECAYS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45)
Q_SMOOTHING = (0.0, 0.2, 0.4, 0.6, 0.8)  # decays of the query smoothings in the demand proxy
# Decays of the *future* query smoothings (from the next period on): organic demand persists while the
# query count's own noise does not, so later queries measure today's demand free of today's noise, which
# demand-following spend (branded search) tracks.
Q_LEADS = (0.0, 0.5, 0.8)


def shape_log_prior(
    half_saturations: Sequence[float], shapes: Sequence[float], prior: str
) -> np.ndarray:
    """Log prior weight of each (half-saturation multiple, Hill exponent) pair, multiple-major.

    ``"uniform"`` weighs every pair equally. ``"meridian"`` keeps the exponent 1 alone (the others
    weigh ``-inf``) and gives each multiple the mass Meridian's default half-saturation prior puts
    on its cell of the grid (from the geometric midpoint with the multiple below to the one with the
    multiple above; the first and last cells reach to the prior's bounds), so a coarse grid carries
    the prior's mass, not its density at a few points.
    """
    m = np.asarray(half_saturations, dtype=float)
    n = np.asarray(shapes, dtype=float)
    if prior == "uniform":
        return np.zeros(m.size * n.size)
    if not np.isclose(n, MERIDIAN_EXPONENT).any():
        raise ConfigError(
            f"shape_prior='meridian' fixes the Hill exponent at {MERIDIAN_EXPONENT:g}, "
            f"which the shapes {list(shapes)} do not hold"
        )
    mean, sd, low, high = MERIDIAN_HALF_SATURATION
    order = np.argsort(m)
    edges = np.sqrt(m[order][1:] * m[order][:-1])
    cuts = np.clip(np.concatenate([[low], edges, [high]]), low, high)
    mass = np.empty(m.size)
    mass[order] = np.diff(special.ndtr((cuts - mean) / sd))
    if not (mass > 0).any():
        raise ConfigError(
            f"shape_prior='meridian' puts no mass on the half-saturations {list(half_saturations)}"
        )
    with np.errstate(divide="ignore"):
        log_mass = np.log(mass / mass.sum())
        log_exponent = np.where(np.isclose(n, MERIDIAN_EXPONENT), 0.0, -np.inf)
    return (log_mass[:, None] + log_exponent[None, :]).ravel()


def demand_proxy(Qs: np.ndarray) -> list[np.ndarray]:
    """The queries per unit size, their past smoothings and their future smoothings (periods x geos each)."""
    past = [geometric_adstock(Qs, d) for d in Q_SMOOTHING]
    nxt = np.vstack([Qs[1:], Qs[-1:]])  # the next period's queries (the last period repeats itself)
    future = [geometric_adstock(nxt[::-1], d)[::-1] for d in Q_LEADS]
    return past + future


# Periods per block of the dependence groups (market cluster x block) of the robust inference.
BLOCK_PERIODS = {"day": 56, "week": 8, "month": 2, "year": 1}


class MediatorWarning(UserWarning):
    """The mediator (branded queries) is missing or constant: demand could not be adjusted for."""


@dataclass(frozen=True)
class Shape:
    decay: float
    half_saturation: float  # per unit market size
    shape: float


def _saturated(x: np.ndarray, sh: Shape) -> np.ndarray:
    """Unit-coefficient Hill curve of the normalised geometric adstock (the curve core's), along axis 0."""
    a = geometric_adstock(x, sh.decay)
    return R.value(
        "hill", a, {"beta": 1.0, "half_saturation": sh.half_saturation, "shape": sh.shape}
    )


def resolve_clusters(
    panel: Panel,
    mapping: Mapping[str, str] | None = None,
    column: str | None = None,
    source: str = "the cluster mapping",
) -> dict[str, str] | None:
    """Cluster of every geo from a mapping or a panel column; None (one market) without either.

    Raises
    ------
    DataError
        A geo missing from the mapping, a missing column, or a geo whose column value changes over time.
    """
    if mapping is not None and column is not None:
        raise ConfigError(
            "give the clusters either as a mapping (--clusters) or a panel column (--cluster-col), not both"
        )
    if mapping is not None:
        missing = [g for g in panel.geos if g not in mapping]
        if missing:
            raise DataError(
                f"{source}: geo '{missing[0]}' of {panel.source} has no cluster"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            )
        return {g: str(mapping[g]) for g in panel.geos}
    if column is not None:
        if column not in panel.data.columns:
            raise DataError(f"{panel.source}: no cluster column '{column}'")
        values = panel.data[column]
        missing = values.isna() | (values.astype(str).str.strip() == "")
        if missing.any():
            row = panel.data[missing].iloc[0]
            raise DataError(
                f"{panel.source}: cluster column '{column}' is empty at geo '{row[panel.geo_col]}', "
                f"date {pd.Timestamp(row[panel.date_col]).date()}"
            )
        per = panel.data.groupby(panel.geo_col)[column].agg(
            lambda v: v.astype(str).unique().tolist()
        )
        for g, vals in per.items():
            if len(vals) != 1:
                raise DataError(
                    f"{panel.source}: geo '{g}' has more than one value in cluster column '{column}'"
                )
        return {str(g): v[0] for g, v in per.items()}
    return None


def graph_roles(graph, channels: Sequence[str], mediator: str) -> tuple[list[str], list[str]]:
    """Channels whose spend points into the mediator, and channels whose spend has a parent (follows demand)."""
    mediated, demand = [], []
    for ch in channels:
        node = SPEND_PREFIX + ch
        if node not in graph:
            continue
        if graph.has_edge(node, mediator):
            mediated.append(ch)
        if any(not str(p).startswith(SPEND_PREFIX) for p in graph.predecessors(node)):
            demand.append(ch)
    return mediated, demand


class _TwoWay:
    """Residual-maker of geo effects plus cluster-by-period effects on a balanced panel (rows date-major)."""

    def __init__(self, cidx: np.ndarray, n_cl: int, T: int, G: int) -> None:
        self.cidx, self.n_cl, self.T, self.G = cidx, n_cl, T, G
        self.members = [np.flatnonzero(cidx == c) for c in range(n_cl)]
        self.dof = G + T * n_cl - n_cl

    def resid(self, v: np.ndarray) -> np.ndarray:
        X = v.reshape(self.T, self.G, -1).astype(float, copy=True)
        X -= X.mean(axis=0, keepdims=True)
        for m in self.members:
            if len(m):
                X[:, m] -= X[:, m].mean(axis=1, keepdims=True)
        return X.reshape(v.shape)


def block_index(T: int, period: str) -> np.ndarray:
    """Block of consecutive periods of each period (``BLOCK_PERIODS`` long; a short tail joins the last)."""
    L = BLOCK_PERIODS.get(period, 8)
    block = np.arange(T) // L
    n = int(block[-1]) + 1
    if n > 1 and T - (n - 1) * L < L / 2:
        block[block == n - 1] = n - 2
    return block
