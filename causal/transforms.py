"""Adstock (carryover) and saturation transforms: thin re-exports of :mod:`causal.response`.

Kept so existing imports keep working; every formula lives in :mod:`causal.response`.
"""

from __future__ import annotations

import numpy as np

from causal.response import (  # noqa: F401  (re-exported)
    adstock,
    geometric_adstock,
    hill,
    weibull_adstock_weights,
    weighted_adstock,
)
from causal.response import value as _value


def response(form: str, x: np.ndarray, params: dict) -> np.ndarray:
    """Steady-state response of a curves.json ``response`` block at spend ``x``."""
    return _value(form, x, params)


__all__ = [
    "adstock",
    "geometric_adstock",
    "hill",
    "response",
    "weibull_adstock_weights",
    "weighted_adstock",
]
