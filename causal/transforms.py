"""Adstock (carryover) and saturation transforms shared by the world and the curves.

Adstock is *normalised*: the weights over lags sum to one, so a steady spend
``x`` per period has steady adstock ``x`` and the steady-state response is the
saturation curve evaluated at ``x``. This is the convention of curves.json.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter


def geometric_adstock(x: np.ndarray, decay: float | np.ndarray, *, axis: int = 0) -> np.ndarray:
    r"""Normalised geometric adstock along ``axis``.

    .. math:: a_t = (1 - \lambda) x_t + \lambda a_{t-1}, \quad a_{-1} = x_0

    Starting from ``x_0`` (rather than zero) treats the series as having run at
    its first value before the data begin, so there is no artificial ramp-up.
    ``decay`` may be an array broadcasting against ``x`` without ``axis``
    (one decay per column).
    """
    x = np.asarray(x, dtype=float)
    decay = np.asarray(decay, dtype=float)
    if decay.ndim == 0:
        lam = float(decay)
        x0 = np.take(x, [0], axis=axis)
        out, _ = lfilter([1.0 - lam], [1.0, -lam], x, axis=axis, zi=lam * x0)
        return out
    xm = np.moveaxis(x, axis, 0)
    out = np.empty_like(xm)
    prev = xm[0]
    for t in range(xm.shape[0]):
        prev = (1.0 - decay) * xm[t] + decay * prev
        out[t] = prev
    return np.moveaxis(out, 0, axis)


def weibull_adstock_weights(shape: float, scale: float, max_lag: int) -> np.ndarray:
    """Normalised Weibull-PDF lag weights over ``max_lag + 1`` lags (Robyn's Weibull adstock)."""
    lags = np.arange(1, max_lag + 2, dtype=float)
    w = (shape / scale) * (lags / scale) ** (shape - 1) * np.exp(-((lags / scale) ** shape))
    return w / w.sum()


def weighted_adstock(x: np.ndarray, weights: np.ndarray, *, axis: int = 0) -> np.ndarray:
    """Adstock with explicit normalised lag weights, padded with the first value."""
    x = np.moveaxis(np.asarray(x, dtype=float), axis, 0)
    L = len(weights)
    padded = np.concatenate([np.repeat(x[:1], L - 1, axis=0), x], axis=0)
    out = np.zeros_like(x)
    for lag, w in enumerate(weights):
        out += w * padded[L - 1 - lag : L - 1 - lag + x.shape[0]]
    return np.moveaxis(out, 0, axis)


def hill(x: np.ndarray, half_saturation: float | np.ndarray, shape: float | np.ndarray) -> np.ndarray:
    """Hill saturation ``x^s / (K^s + x^s)`` in [0, 1)."""
    x = np.maximum(np.asarray(x, dtype=float), 0.0)
    xs = x**shape
    return xs / (np.asarray(half_saturation, dtype=float) ** shape + xs)


def response(form: str, x: np.ndarray, params: dict) -> np.ndarray:
    """Steady-state response of a curves.json ``response`` block at spend ``x``."""
    x = np.maximum(np.asarray(x, dtype=float), 0.0)
    beta = float(params["beta"])
    if form == "hill":
        return beta * hill(x, params["half_saturation"], params.get("shape", 1.0))
    if form == "exp":
        return beta * (1.0 - np.exp(-x / float(params["scale"])))
    if form == "log":
        return beta * np.log1p(x / float(params["scale"]))
    if form == "power":
        return beta * x ** float(params["exponent"])
    if form == "linear":
        return beta * x
    raise ValueError(f"unknown response form '{form}' (use hill, exp, log, power or linear)")
