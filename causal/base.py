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

The contract, declared here once and checked over every estimator by
``tests/test_estimator_contract.py``:

* ``__init__`` only stores its keyword arguments under the same names
  (``get_params``/``set_params``/:func:`clone` work from the signature);
* ``fit`` validates its input (:meth:`CounterfactualEstimator._validate`) and
  the parameters against the class's ``_parameter_constraints`` table
  (:meth:`BaseEstimator._validate_params`), does the work and returns ``self``;
* everything learnt from data ends in ``_`` and does not exist before ``fit``;
* what the readout needs to know about an estimator is in its tags
  (:func:`get_tags`, :class:`EstimatorTags`), never found by probing
  attributes; the hooks :meth:`CounterfactualEstimator.refit_params`,
  :meth:`CounterfactualEstimator.placebo_of` and
  :meth:`CounterfactualEstimator.null_refit_residuals` have defaults here.
"""

from __future__ import annotations

import copy
import importlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from numbers import Integral, Real
from typing import Any, ClassVar

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
# Every module of ``causal`` that defines an estimator: :func:`all_estimators` imports them all,
# so an estimator added to one of them is enumerated (and contract-tested) without a list edit.
ESTIMATOR_MODULES: tuple[str, ...] = (
    "causal.synthetic_control",
    "causal.synth_predictors",
    "causal.sdid",
    "causal.tbr",
    "causal.did",
    "causal.bsts",
    "causal.gbr",
    "causal.trimmed_match",
)


# -- parameter constraints ---------------------------------------------------------------------
@dataclass(frozen=True)
class Options:
    """A parameter that takes one of a few values."""

    values: tuple

    def __init__(self, *values: Any) -> None:
        object.__setattr__(self, "values", tuple(values))

    def accepts(self, v: Any) -> bool:
        return any(v is x or (type(v) is type(x) and v == x) for x in self.values)

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(x) for x in self.values)


@dataclass(frozen=True)
class Interval:
    """A number of ``kind`` (Integral or Real) in ``[lo, hi]`` (``closed`` says which ends count)."""

    kind: type
    lo: float | None
    hi: float | None
    closed: str = "both"

    def accepts(self, v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, self.kind):
            return False
        if not np.isfinite(v):
            return False
        left_ok = self.lo is None or (
            v >= self.lo if self.closed in ("both", "left") else v > self.lo
        )
        right_ok = self.hi is None or (
            v <= self.hi if self.closed in ("both", "right") else v < self.hi
        )
        return bool(left_ok and right_ok)

    def __str__(self) -> str:
        what = "an integer" if self.kind is Integral else "a number"
        lb = "[" if self.closed in ("both", "left") else "("
        rb = "]" if self.closed in ("both", "right") else ")"
        lo = "-inf" if self.lo is None else f"{self.lo:g}"
        hi = "inf" if self.hi is None else f"{self.hi:g}"
        return f"{what} in {lb}{lo}, {hi}{rb}"


def _describe(spec: Any) -> str:
    if spec is None:
        return "None"
    if isinstance(spec, type):
        return f"a {spec.__name__}"
    return str(spec)


def _accepts(spec: Any, v: Any) -> bool:
    if spec is None:
        return v is None
    if isinstance(spec, type):
        return isinstance(v, spec)
    return spec.accepts(v)


POSITIVE_INT = Interval(Integral, 1, None)
NON_NEGATIVE = Interval(Real, 0, None)
SEED = Interval(Integral, 0, None)


# -- tags ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EstimatorTags:
    """What callers (the readout, the design search, the contract test) may rely on.

    Attributes
    ----------
    input : {"panel", "geos", "pairs"}
        What ``fit`` takes: ``panel`` the (treated pre, controls pre, controls post) arrays
        of :class:`CounterfactualEstimator`; ``geos`` one value per geo (GBR); ``pairs`` one
        difference per matched pair (Trimmed Match).
    own_inference : bool
        ``effect_inference`` gives the interval and p-value in the current configuration
        (otherwise the readout's conformal test does).
    conformal : bool
        The readout's conformal test may refit it (hundreds of refits: not for slow fits).
    donor_weights : bool
        ``fit`` sets ``weights_``, one weight per donor.
    per_unit_params : bool
        Its parameters describe the treated unit (e.g. covariate predictors), so a placebo
        needs :meth:`CounterfactualEstimator.placebo_of`, not the estimator as given.
    requires_positive_level : bool
        The inference needs a positive outcome level (relative effects).
    min_pre_periods : int
        Shortest pre-period ``fit`` accepts.
    inference_options : mapping of str to mapping
        The estimator's own inferences by the name a readout asks for them
        (``--inference``), each with the parameters that select it; the first is the default.
    without_own_inference : mapping
        Parameters for a fit whose own inference will not be asked for (a conformal readout,
        a spend fit): they skip the work only that inference needs (its placebos); empty when
        the fit does no such work.
    """

    input: str = "panel"
    own_inference: bool = False
    conformal: bool = True
    donor_weights: bool = False
    per_unit_params: bool = False
    requires_positive_level: bool = False
    min_pre_periods: int = 1
    inference_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    without_own_inference: Mapping[str, Any] = field(default_factory=dict)


class BaseEstimator:
    """scikit-learn's conventions without the dependency: params in ``__init__``, ``fit`` returns self.

    Subclasses declare ``_parameter_constraints`` (parameter name -> list of accepted specs:
    ``None``, a type, :class:`Options` or :class:`Interval`); :meth:`_validate_params`, called
    at the start of ``fit``, checks them all and names the parameter, what was expected and
    what was received.
    """

    _parameter_constraints: ClassVar[Mapping[str, list]] = {}

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

    def _validate_params(self) -> None:
        """Check every parameter against ``_parameter_constraints`` (the one place they are checked)."""
        for name, specs in self._parameter_constraints.items():
            value = getattr(self, name)
            if not any(_accepts(s, value) for s in specs):
                expected = " or ".join(_describe(s) for s in specs)
                raise ConfigError(
                    f"{type(self).__name__}: parameter '{name}' must be {expected}, got {value!r}"
                )

    def __liftlab_tags__(self) -> EstimatorTags:
        """The estimator's tags; subclasses extend ``super().__liftlab_tags__()`` with ``replace``."""
        return EstimatorTags()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def data_scale(*arrays: np.ndarray) -> float:
    """A positive number of the data's order of magnitude (the mean absolute value; 1 if none).

    The readout fits on data divided by it, and estimators with absolute tolerances measure
    in its units, so no result depends on the outcome's units.

    >>> data_scale(np.array([2.0, -4.0]), np.array([[6.0]]))
    4.0
    """
    values = np.concatenate([np.abs(np.asarray(a, float)).ravel() for a in arrays])
    s = float(values.mean()) if values.size else 0.0
    return s if np.isfinite(s) and s > 0 else 1.0


def get_tags(estimator: BaseEstimator) -> EstimatorTags:
    """The tags of an estimator (instance; they may depend on its parameters)."""
    return estimator.__liftlab_tags__()


def clone(estimator: BaseEstimator) -> BaseEstimator:
    """A new unfitted estimator with the same parameters."""
    return type(estimator)(**copy.deepcopy(estimator.get_params()))


def check_is_fitted(estimator: Any, attribute: str = "counterfactual_post_") -> None:
    if not hasattr(estimator, attribute):
        raise NotFittedError(f"this {type(estimator).__name__} is not fitted yet; call fit() first")


def is_fitted(estimator: Any, attribute: str = "counterfactual_post_") -> bool:
    """Whether ``fit`` has run (the attribute every counterfactual estimator's fit sets)."""
    return hasattr(estimator, attribute)


class CounterfactualEstimator(BaseEstimator):
    """Base class of counterfactual estimators; subclasses implement :meth:`_fit`.

    ``min_pre_periods`` is the shortest pre-period the method can fit; the
    readout raises a :class:`~causal.errors.DataError` naming it when the
    pre-period is shorter.
    """

    name: ClassVar[str] = ""
    min_pre_periods: ClassVar[int] = 3

    def fit(
        self,
        Y_treated_pre: np.ndarray,
        Y_control_pre: np.ndarray,
        Y_control_post: np.ndarray | None = None,
    ):
        """Fit on the pre-period and predict the test period; returns ``self``."""
        self._validate_params()
        y, X0, X1 = self._validate(Y_treated_pre, Y_control_pre, Y_control_post)
        self._fit(y, X0, X1)
        return self

    def __liftlab_tags__(self) -> EstimatorTags:
        return replace(super().__liftlab_tags__(), min_pre_periods=self.min_pre_periods)

    def refit_params(self) -> dict[str, Any]:
        """Parameters a refit inside an inference loop takes from this fitted estimator.

        Empty by default; an estimator that tunes something on the real fit (a ridge penalty,
        a predictor weighting) returns it, so placebo and conformal refits keep it fixed.
        """
        return {}

    def pre_fit_diagnostics(self) -> dict[str, float]:
        """Pre-period fit measures the estimator computes itself (any of ``rmse``, ``r2``,
        ``scaled_l2_imbalance``); the readout computes the missing ones from the fit."""
        return {}

    def placebo_of(self, j: int) -> CounterfactualEstimator:
        """The estimator that reads out donor ``j`` as if treated (this one unless its
        parameters describe the treated unit; see ``EstimatorTags.per_unit_params``)."""
        return self

    def null_refit_residuals(
        self, y_pre: np.ndarray, y_post: np.ndarray, X: np.ndarray, lifts: np.ndarray
    ) -> np.ndarray | None:
        """Residuals of the whole-window refit under no effect, for every injected lift at once.

        The conformal test refits on pre and test periods with the test outcome
        ``(1 + lift) * y_post``; an estimator whose refit is a known function of the lift
        returns the (K, T0 + T1) residuals here, exactly, so the design's power search needs no
        refit per lift. ``None`` (the default): not available, the caller refits.
        """
        return None

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


def all_estimators() -> list[type[BaseEstimator]]:
    """Every concrete estimator class of ``causal`` (the modules of ``ESTIMATOR_MODULES``).

    Walks the subclasses of :class:`BaseEstimator` after importing those modules, so a new
    estimator is listed (and covered by the contract test) as soon as its module is.

    >>> names = [c.__name__ for c in all_estimators()]
    >>> "TimeBasedRegression" in names and "TrimmedMatch" in names
    True
    """
    for module in ESTIMATOR_MODULES:
        importlib.import_module(module)
    found: list[type[BaseEstimator]] = []
    stack = list(BaseEstimator.__subclasses__())
    while stack:
        cls = stack.pop(0)
        stack.extend(cls.__subclasses__())
        if cls.__module__.startswith("causal.") and not cls.__name__.startswith("_"):
            if cls not in found and cls is not CounterfactualEstimator:
                found.append(cls)
    return sorted(found, key=lambda c: (c.__module__, c.__name__))
