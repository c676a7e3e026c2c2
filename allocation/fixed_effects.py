"""The fixed block of the response model: geo effects and per-cluster time structure, profiled out.

The response model (:class:`allocation.response_model.ResponseModel`) and the structural model
(:mod:`allocation.structural`) regress the outcome per unit of market size on media features
with geo fixed effects and per-cluster trend, yearly Fourier terms, day of week and controls.
Those nuisance terms are removed by Frisch-Waugh-Lovell (:class:`Projector`), so every step of
the curve search is a small regression on residuals.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from causal.panel import Panel


def fixed_block(
    panel: Panel,
    controls: Sequence[str],
    cidx: np.ndarray,
    n_cl: int,
    *,
    fourier: int = 2,
    holdout: int = 0,
) -> FixedBlock:
    """Geo effects plus per-cluster trend, yearly Fourier terms, day of week and controls (linear and squared)."""
    T, G = len(panel.dates), len(panel.geos)
    t = np.repeat(np.arange(T), G)
    trend = t / max(T - 1, 1)
    days = np.repeat(panel.dates.day_of_year.to_numpy(), G)
    per_cluster = [trend]
    # Yearly terms need about a year (9 months) of data before the holdout; on less they extrapolate wildly.
    span = (panel.dates[-1] - panel.dates[0]).days
    held = (panel.dates[-1] - panel.dates[max(0, T - 1 - holdout)]).days
    harmonics = fourier if span - held >= 274 else 0
    for k in range(1, harmonics + 1):
        per_cluster += [
            np.sin(2 * np.pi * k * days / 365.25),
            np.cos(2 * np.pi * k * days / 365.25),
        ]
    if panel.freq == "D":
        dow = np.repeat(panel.dates.day_of_week.to_numpy(), G)
        per_cluster += [(dow == d).astype(float) for d in range(1, 7)]
    for col in controls:
        z = panel.wide(col).to_numpy().ravel()
        z = (z - z.mean()) / (z.std() or 1.0)
        per_cluster += [z, z**2]
    return FixedBlock([v.reshape(T, G) for v in per_cluster], cidx, n_cl, T, G)


class FixedBlock:
    """Geo fixed effects plus per-cluster time features, profiled out of every regression.

    ``features`` are (T, G) arrays; each enters once per cluster. When every
    feature is the same for all geos of a cluster at each period (trend,
    Fourier, day of week and cluster-level controls such as the world's launch
    index and competitor price), the projection on a balanced block of periods
    has a closed form: demean each geo over time, then remove the fit of the
    cluster's mean series on the time-demeaned features. That is exact and
    O(T G), against a QR of a (T G) x q matrix otherwise.
    """

    def __init__(
        self, features: list[np.ndarray], cidx: np.ndarray, n_cl: int, T: int, G: int
    ) -> None:
        self.features, self.cidx, self.n_cl, self.T, self.G = features, cidx, n_cl, T, G
        members = [np.flatnonzero(cidx == c) for c in range(n_cl)]
        self.members = members
        self.fast = all(
            np.ptp(v[:, m], axis=1).max() == 0 if len(m) else True
            for v in features
            for m in members
        )

    def projector(self, rows: np.ndarray) -> Projector:
        t_rows = rows.reshape(self.T, self.G).all(axis=1)
        if not (rows.reshape(self.T, self.G).any(axis=1) == t_rows).all():
            raise ValueError("fixed block: rows must select whole periods")
        return Projector(self, np.flatnonzero(t_rows))


class Projector:
    """Residual-maker of the fixed block on a set of whole periods (see :class:`FixedBlock`)."""

    def __init__(self, block: FixedBlock, t_idx: np.ndarray) -> None:
        self.b, self.t_idx = block, t_idx
        G, k = block.G, len(block.features)
        self.dof = G + block.n_cl * k
        self.fast = block.fast
        if self.fast:
            self.W, self.Wmean, self.pinv = [], [], []
            for m in block.members:
                W = (
                    np.column_stack([v[t_idx, m[0]] for v in block.features])
                    if len(m)
                    else np.zeros((len(t_idx), k))
                )
                mean = W.mean(axis=0)
                self.W.append(W)
                self.Wmean.append(mean)
                self.pinv.append(np.linalg.pinv(W - mean))
        else:
            geo = np.tile(np.arange(G), len(t_idx))
            cl = block.cidx[geo]
            cols = [np.eye(G)[geo]]
            for v in block.features:
                vv = v[t_idx].ravel()
                cols += [np.where(cl == c, vv, 0.0) for c in range(block.n_cl)]
            self.Z = np.column_stack(cols)
            self.Q = np.linalg.qr(self.Z)[0]

    def resid(self, v: np.ndarray) -> np.ndarray:
        """Residual of ``v`` ((n,) or (n, p), rows date-major over the selected periods)."""
        if not self.fast:
            return v - self.Q @ (self.Q.T @ v)
        Tr, G = len(self.t_idx), self.b.G
        X = v.reshape(Tr, G, -1).astype(float, copy=True)
        X -= X.mean(axis=0, keepdims=True)
        for m, W, mean, P in zip(self.b.members, self.W, self.Wmean, self.pinv):
            if len(m):
                xbar = X[:, m].mean(axis=1)  # (Tr, p)
                X[:, m] -= ((W - mean) @ (P @ xbar))[:, None, :]
        return X.reshape(v.shape)

    def forecast(self, y: np.ndarray, t_new: np.ndarray) -> np.ndarray:
        """Fit the fixed block to ``y`` on the selected periods and predict periods ``t_new``: (len, G)."""
        G = self.b.G
        if not self.fast:
            gamma, *_ = np.linalg.lstsq(self.Z, y, rcond=None)
            geo = np.tile(np.arange(G), len(t_new))
            cl = self.b.cidx[geo]
            cols = [np.eye(G)[geo]]
            for v in self.b.features:
                vv = v[t_new].ravel()
                cols += [np.where(cl == c, vv, 0.0) for c in range(self.b.n_cl)]
            return (np.column_stack(cols) @ gamma).reshape(len(t_new), G)
        Y = y.reshape(len(self.t_idx), G)
        out = np.empty((len(t_new), G))
        for m, mean, P in zip(self.b.members, self.Wmean, self.pinv):
            if not len(m):
                continue
            gamma = P @ Y[:, m].mean(axis=1)
            alpha = Y[:, m].mean(axis=0) - mean @ gamma  # geo effects
            W_new = np.column_stack([v[t_new, m[0]] for v in self.b.features])
            out[:, m] = alpha[None, :] + (W_new @ gamma)[:, None]
        return out
