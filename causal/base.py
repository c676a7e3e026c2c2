"""The estimator contract shared by every counterfactual method in ``causal/``.

An estimator learns, from a pre-period, how the treated series relates to the
control (donor) series, and predicts the treated series' counterfactual over
the test period from the donors' test-period outcomes. It knows nothing about
geos, dates or treatment windows: the readout in ``experiments/`` slices the
panel, clones an unfitted estimator and fits it (also in placebo and conformal
loops, which is why ``fit`` is an explicit call).

Shapes (all float arrays):

* ``Y_treated_pre``  (T0, N1): the treated geos' outcomes before the test
  (1-D is taken as one treated series);
* ``Y_control_pre``  (T0, J):  the donors' outcomes before the test;
* ``Y_control_post`` (T1, J):  the donors' outcomes in the test (T1 may be 0).

After ``fit`` every estimator has, for the treated *average* series
(the mean over the N1 treated geos):

* ``counterfactual_pre_`` (T0,): in-sample fit;
* ``counterfactual_post_`` (T1,): the counterfactual over the test;
* ``n_treated_``, ``n_controls_``.

Estimators that weight donors also set ``weights_`` (J,).
"""

from __future__ import annotations

import copy
import importlib
import inspect
from typing import Any

import numpy as np

from causal.errors import ConfigError, DataError, NotFittedError

# INTERFACE.md's estimator names -> "module:Class". Modules are imported on first use.
ESTIMATOR_PATHS: dict[str, str] = {
    "sc": "causal.synthetic_control:SyntheticControl",
    "sc-classic": "causal.synthetic_control:ClassicSyntheticControl",
    "asc": "causal.synthetic_control:AugmentedSyntheticControl",
    "sdid": "causal.sdid:SyntheticDiD",
    "tbr": "causal.tbr:TimeBasedRegression",
    "did": "causal.did:DifferenceInDifferences",
    "bsts": "causal.bsts:BayesianStructuralTimeSeries",
}


class BaseEstimator:
    """scikit-learn's conventions without the dependency: params in ``__init__``, ``fit`` returns self."""

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name for p in sig.parameters.values() if p.name != "self" and p.kind != p.VAR_KEYWORD
        ]

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> BaseEstimator:
        valid = self._param_names()
        for key, value in params.items():
            if key not in valid:
                raise ConfigError(
                    f"{type(self).__name__} has no parameter '{key}' (parameters: {', '.join(valid)})"
                )
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def clone(estimator: BaseEstimator) -> BaseEstimator:
    """A new unfitted estimator with the same parameters."""
    return type(estimator)(**copy.deepcopy(estimator.get_params()))


def check_is_fitted(estimator: Any, attribute: str = "counterfactual_post_") -> None:
    if not hasattr(estimator, attribute):
        raise NotFittedError(f"this {type(estimator).__name__} is not fitted yet; call fit() first")


class CounterfactualEstimator(BaseEstimator):
    """Base class of counterfactual estimators; subclasses implement :meth:`_fit`.

    ``min_pre_periods`` is the shortest pre-period the method can fit; the
    readout raises a :class:`~causal.errors.DataError` naming it when the
    pre-period is shorter.
    """

    name: str = ""
    min_pre_periods: int = 3

    def fit(
        self,
        Y_treated_pre: np.ndarray,
        Y_control_pre: np.ndarray,
        Y_control_post: np.ndarray | None = None,
    ):
        """Fit on the pre-period and predict the test period; returns ``self``."""
        y, X0, X1 = self._validate(Y_treated_pre, Y_control_pre, Y_control_post)
        self._fit(y, X0, X1)
        return self

    def _validate(self, Y_treated_pre, Y_control_pre, Y_control_post):
        y = np.asarray(Y_treated_pre, dtype=float)
        if y.ndim == 1:
            y = y[:, None]
        X0 = np.asarray(Y_control_pre, dtype=float)
        if X0.ndim != 2:
            raise DataError(
                f"{type(self).__name__}.fit: Y_control_pre must be 2-D (T0, J), got shape {X0.shape}"
            )
        X1 = (
            np.empty((0, X0.shape[1]))
            if Y_control_post is None
            else np.asarray(Y_control_post, dtype=float)
        )
        if y.shape[0] != X0.shape[0]:
            raise DataError(
                f"{type(self).__name__}.fit: treated pre-period has {y.shape[0]} periods, controls {X0.shape[0]}"
            )
        if X1.ndim != 2 or X1.shape[1] != X0.shape[1]:
            raise DataError(
                f"{type(self).__name__}.fit: controls have {X0.shape[1]} columns before the test, {X1.shape[-1]} during it"
            )
        if X0.shape[1] < 1:
            raise DataError(f"{type(self).__name__}.fit: no control geos")
        if y.shape[0] < self.min_pre_periods:
            raise DataError(
                f"{type(self).__name__}: pre-period has {y.shape[0]} periods; the method needs at least {self.min_pre_periods}"
            )
        for name, arr in (("treated", y), ("control pre-period", X0), ("control test-period", X1)):
            if not np.isfinite(arr).all():
                raise DataError(
                    f"{type(self).__name__}.fit: {name} outcomes contain NaN or infinite values"
                )
        self.n_treated_, self.n_controls_ = y.shape[1], X0.shape[1]
        return y, X0, X1

    def _fit(self, Y: np.ndarray, X0: np.ndarray, X1: np.ndarray) -> None:  # pragma: no cover
        raise NotImplementedError


def estimator_class(name: str) -> type[CounterfactualEstimator]:
    """The class behind an INTERFACE.md estimator name."""
    if name not in ESTIMATOR_PATHS:
        raise ConfigError(f"unknown estimator '{name}' (use one of: {', '.join(ESTIMATOR_PATHS)})")
    module, cls = ESTIMATOR_PATHS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def make_estimator(name: str, **params: Any) -> CounterfactualEstimator:
    """An unfitted estimator by its INTERFACE.md name (``sc``, ``asc``, ``sdid``, ``tbr``, ``did``, ``bsts``)."""
    return estimator_class(name)(**params)


class EffectInference:
    """What an estimator with its own inference reports about the test-period effect.

    All quantities are on the treated *average* series (mean over treated geos),
    summed over the test periods; the readout scales them to totals.

    Attributes
    ----------
    effect : float
        Sum over the test of (observed - counterfactual).
    effect_ci : tuple of float
        Interval at the requested confidence.
    p_value : float
        Two-sided, for no effect.
    counterfactual_lo, counterfactual_hi : ndarray (T1,)
        Pointwise band of the counterfactual at the same confidence.
    method : str
        One line naming the inference (e.g. "posterior predictive, 1000 draws").
    """

    def __init__(self, effect, effect_ci, p_value, counterfactual_lo, counterfactual_hi, method):
        self.effect = float(effect)
        self.effect_ci = (float(effect_ci[0]), float(effect_ci[1]))
        self.p_value = float(p_value)
        self.counterfactual_lo = np.asarray(counterfactual_lo, dtype=float)
        self.counterfactual_hi = np.asarray(counterfactual_hi, dtype=float)
        self.method = method

    def __repr__(self) -> str:
        return f"EffectInference(effect={self.effect:.4g}, effect_ci={self.effect_ci}, p_value={self.p_value:.3g}, method={self.method!r})"
