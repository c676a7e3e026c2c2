r"""Response curves and adstocks, each defined once.

Every curve form of curves.json is written here and nowhere else: its value,
first and second derivative, its cvxpy expression (exact DCP where the curve is
concave), its piecewise-linear form, and how it scales with market size. The
response model, calibration, every planner and the backtest call these.

A form is a *unit curve* ``g(z; s)`` with a structural exponent ``s`` (Hill's
``shape``, power's ``exponent``; none for the others) and a split of the
parameters into a coefficient and a spend scale, so that

.. math:: f(x) = c \, g(x / k; s).

======== ===================================== ================== ===========================
form     ``f(x)``                              ``c``, ``k``       ``g(z; s)``
======== ===================================== ================== ===========================
hill     ``beta x^s / (K^s + x^s)``            ``beta``, ``K``    ``z^s / (1 + z^s)``
exp      ``beta (1 - exp(-x / scale))``        ``beta``, scale    ``1 - exp(-z)``
log      ``beta log(1 + x / scale)``           ``beta``, scale    ``log(1 + z)``
power    ``beta x^exponent``                   ``beta r^e``, r    ``z^e``
linear   ``beta x``                            ``beta r``, r      ``z``
======== ===================================== ================== ===========================

(``r`` is any reference spend, chosen to keep the solver's variable near one.)

Everything is vectorised: ``value(form, x, params)`` broadcasts ``x`` against
arrays of parameter values (one per posterior draw, grid point or line), by
numpy's rules. Spend below zero counts as zero.

Adstocks are *normalised*: the lag weights sum to one, so a steady spend ``x``
per period has steady adstock ``x`` and the steady-state response is ``f(x)``
(the convention of curves.json). ``geometric`` has ``decay``; ``weibull`` has
``shape``, ``scale`` and ``max_lag`` (Robyn's Weibull-PDF adstock).

Examples
--------
>>> import numpy as np
>>> from causal import response as R
>>> float(R.value("hill", 100.0, {"beta": 10.0, "half_saturation": 100.0, "shape": 2.0}))
5.0
>>> R.value("exp", 50.0, {"beta": np.array([1.0, 2.0]), "scale": 50.0}).round(4)
array([0.6321, 1.2642])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike
from scipy.signal import lfilter

if TYPE_CHECKING:  # cvxpy is imported where an expression is built, not at import time
    import cvxpy as cp

Params = Mapping[str, "float | np.ndarray"]

# ---------------------------------------------------------------------------------------------
# Response forms
# ---------------------------------------------------------------------------------------------


class NotConcaveError(ValueError):
    """A curve asked for its convex-solver form is not concave (S-shaped Hill, power > 1)."""


def _arr(v) -> np.ndarray:
    return np.asarray(v, dtype=float)


def _z(x) -> np.ndarray:
    return np.maximum(_arr(x), 0.0)


@dataclass(frozen=True)
class ResponseForm:
    """One response form: its parameters and its unit curve ``g(z; s)`` with two derivatives.

    Subclasses define :meth:`unit`, :meth:`unit_d1`, :meth:`unit_d2`, :meth:`cvx_unit` and
    :meth:`split`; everything else (value, derivatives, concavity, piecewise form) follows.

    Attributes
    ----------
    name : str
    params : tuple of str
        Required parameters besides ``form``.
    optional : dict
        Optional parameters and their defaults.
    positive : tuple of str
        Parameters that must be > 0 (a spend scale); ``beta`` must be >= 0.
    """

    name: str
    params: tuple[str, ...]
    optional: tuple[tuple[str, float], ...] = ()
    positive: tuple[str, ...] = ()

    # -- to define per form --------------------------------------------------------------------
    def exponent(self, params: Params) -> np.ndarray:
        """The structural exponent ``s`` (1 for forms without one)."""
        return np.asarray(1.0)

    def unit(self, z: np.ndarray, s) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def unit_d1(self, z: np.ndarray, s) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def unit_d2(self, z: np.ndarray, s) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def cvx_unit(self, z, s: float):  # pragma: no cover - abstract
        """cvxpy expression of ``g(z; s)`` for a constant ``s``, concave (DCP) or :class:`NotConcaveError`."""
        raise NotImplementedError

    def split(self, params: Params, reference=1.0) -> tuple[np.ndarray, np.ndarray]:
        """``(coef, scale)`` with ``f(x) = coef * g(x / scale)``; ``reference`` is used by scale-free forms."""
        raise NotImplementedError  # pragma: no cover - abstract

    def to_market(self, params: Params, size) -> dict:
        """Parameters of ``size * f(x / size)``: a per-unit-size curve scaled to a market of ``size``."""
        raise NotImplementedError  # pragma: no cover - abstract

    # -- derived -------------------------------------------------------------------------------
    def value(self, x, params: Params) -> np.ndarray:
        """``f(x)``: steady-state outcome per period at steady spend ``x`` per period."""
        c, k = self.split(params)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return c * self.unit(_z(x) / k, self.exponent(params))

    def derivative(self, x, params: Params) -> np.ndarray:
        """``f'(x)``: outcome of one more unit of spend (``inf`` where the slope is unbounded at 0)."""
        c, k = self.split(params)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return c / k * self.unit_d1(_z(x) / k, self.exponent(params))

    def second_derivative(self, x, params: Params) -> np.ndarray:
        """``f''(x)`` (negative where the curve is concave)."""
        c, k = self.split(params)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return c / k**2 * self.unit_d2(_z(x) / k, self.exponent(params))

    def is_concave(self, params: Params) -> np.ndarray:
        """Whether the curve is concave on all of ``x >= 0`` (array over parameter values)."""
        return np.asarray(self.exponent(params) <= 1.0)

    def inflection(self, params: Params) -> np.ndarray:
        """Spend from which the curve is concave (0 if concave everywhere, ``inf`` if never)."""
        return np.where(self.is_concave(params), 0.0, np.inf)

    def with_defaults(self, params: Params) -> dict:
        return {**dict(self.optional), **{k: v for k, v in params.items() if v is not None}}


class _Hill(ResponseForm):
    def exponent(self, params):
        return _arr(params.get("shape", 1.0))

    def unit(self, z, s):
        u = z**s
        return u / (1.0 + u)

    def unit_d1(self, z, s):
        u = z**s
        return s * z ** (s - 1.0) / (1.0 + u) ** 2

    def unit_d2(self, z, s):
        # g'' = s z^(s-2) ((s-1) - (s+1) z^s) / (1+z^s)^3; the first term vanishes for s = 1
        u = z**s
        first = np.where(s == 1.0, 0.0, s * (s - 1.0) * z ** (s - 2.0))
        return (first - s * (s + 1.0) * z ** (2.0 * s - 2.0)) / (1.0 + u) ** 3

    def cvx_unit(self, z, s):
        import cvxpy as cp

        if s > 1.0:
            raise NotConcaveError(f"hill curve with shape {s:g} > 1 is S-shaped, not concave")
        # Exact DCP: 1/(1+w) is convex and non-increasing, w = z^s concave for s <= 1.
        return 1 - cp.inv_pos(1 + (z if s == 1.0 else cp.power(z, s, approx=False)))

    def split(self, params, reference=1.0):
        return _arr(params["beta"]), _arr(params["half_saturation"])

    def to_market(self, params, size):
        return {
            **params,
            "beta": _arr(params["beta"]) * size,
            "half_saturation": _arr(params["half_saturation"]) * size,
        }

    def inflection(self, params):
        s = self.exponent(params)
        k = _arr(params["half_saturation"])
        with np.errstate(invalid="ignore", divide="ignore"):
            z = np.where(s > 1.0, ((s - 1.0) / np.where(s > 1, s + 1.0, 1.0)) ** (1.0 / s), 0.0)
        return k * z


class _Exp(ResponseForm):
    def unit(self, z, s):
        return -np.expm1(-z)

    def unit_d1(self, z, s):
        return np.exp(-z)

    def unit_d2(self, z, s):
        return -np.exp(-z)

    def cvx_unit(self, z, s):
        import cvxpy as cp

        return 1 - cp.exp(-z)

    def split(self, params, reference=1.0):
        return _arr(params["beta"]), _arr(params["scale"])

    def to_market(self, params, size):
        return {
            **params,
            "beta": _arr(params["beta"]) * size,
            "scale": _arr(params["scale"]) * size,
        }


class _Log(_Exp):
    def unit(self, z, s):
        return np.log1p(z)

    def unit_d1(self, z, s):
        return 1.0 / (1.0 + z)

    def unit_d2(self, z, s):
        return -1.0 / (1.0 + z) ** 2

    def cvx_unit(self, z, s):
        import cvxpy as cp

        return cp.log1p(z)


class _Power(ResponseForm):
    def exponent(self, params):
        return _arr(params["exponent"])

    def unit(self, z, s):
        return z**s

    def unit_d1(self, z, s):
        return s * z ** (s - 1.0)

    def unit_d2(self, z, s):
        return np.where(s == 1.0, 0.0, s * (s - 1.0) * z ** (s - 2.0))

    def cvx_unit(self, z, s):
        import cvxpy as cp

        if s > 1.0:
            raise NotConcaveError(f"power curve with exponent {s:g} > 1 is convex, not concave")
        return z if s == 1.0 else cp.power(z, s, approx=False)

    def split(self, params, reference=1.0):
        r = np.maximum(_arr(reference), 1e-9)
        return _arr(params["beta"]) * r ** self.exponent(params), r

    def to_market(self, params, size):
        e = _arr(params["exponent"])
        return {**params, "beta": _arr(params["beta"]) * np.asarray(size, float) ** (1.0 - e)}


class _Linear(_Power):
    def exponent(self, params):
        return np.asarray(1.0)

    def split(self, params, reference=1.0):
        r = np.maximum(_arr(reference), 1e-9)
        return _arr(params["beta"]) * r, r

    def to_market(self, params, size):
        return dict(params)


HILL = _Hill("hill", ("beta", "half_saturation"), (("shape", 1.0),), ("half_saturation", "shape"))
EXP = _Exp("exp", ("beta", "scale"), (), ("scale",))
LOG = _Log("log", ("beta", "scale"), (), ("scale",))
POWER = _Power("power", ("beta", "exponent"), (), ("exponent",))
LINEAR = _Linear("linear", ("beta",))

#: Every response form by name.
FORMS: dict[str, ResponseForm] = {f.name: f for f in (HILL, EXP, LOG, POWER, LINEAR)}


def get_form(name: str) -> ResponseForm:
    """The form called ``name``; ``ValueError`` naming the known ones otherwise."""
    try:
        return FORMS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown response form {name!r} (use {', '.join(FORMS)})") from None


def value(form: str, x: ArrayLike, params: Params) -> np.ndarray:
    """``f(x)`` of a curves.json ``response`` block (``params`` may hold ``form``; it is ignored)."""
    return get_form(form).value(x, params)


def derivative(form: str, x: ArrayLike, params: Params) -> np.ndarray:
    """``f'(x)``; see :meth:`ResponseForm.derivative`."""
    return get_form(form).derivative(x, params)


def second_derivative(form: str, x: ArrayLike, params: Params) -> np.ndarray:
    """``f''(x)``; see :meth:`ResponseForm.second_derivative`."""
    return get_form(form).second_derivative(x, params)


def is_concave(form: str, params: Params) -> np.ndarray:
    """Whether the curve is concave for all spend (False for S-shaped Hill and power > 1)."""
    return get_form(form).is_concave(params)


def inflection(form: str, params: Params) -> np.ndarray:
    """Spend from which the curve is concave: ``K ((s-1)/(s+1))^(1/s)`` for an S-shaped Hill."""
    return get_form(form).inflection(params)


def scaling(form: str, params: Params, reference: ArrayLike = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``(coef, scale)`` with ``f(x) = coef * g(x / scale)``."""
    return get_form(form).split(params, reference)


def structure(form: str, params: Params) -> tuple[str, float | None]:
    """What fixes a line's cvxpy expression tree: its form and structural exponent."""
    if form in ("hill", "power"):
        return (form, float(get_form(form).exponent(params)))
    return (form, None)


def to_market(form: str, params: Params, size: float) -> dict:
    """Parameters of the curve ``size * f(x / size)`` (a per-unit-size curve in a market of ``size``)."""
    return get_form(form).to_market(params, size)


def unit_terms(form: str, z: np.ndarray, s: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``g``, ``g'`` and ``g''`` of the unit curve at ``z`` (for Newton-type solvers)."""
    f = get_form(form)
    z = _arr(z)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return f.unit(z, s), f.unit_d1(z, s), f.unit_d2(z, s)


def cvx_response(z: cp.Expression, keys: list[tuple], coef: ArrayLike) -> cp.Expression:
    """cvxpy ``sum_i coef_i g_i(z_i)`` over lines (the first axis of ``z``), exact DCP.

    ``keys`` are :func:`structure` per line; lines are grouped by key so each group
    is one vectorised atom. ``z`` is a vector (lines) or matrix (lines x days);
    ``coef`` (a constant or a :class:`cvxpy.Parameter`) broadcasts against it.

    Raises
    ------
    NotConcaveError
        For an S-shaped Hill or a power with exponent > 1.
    """
    import cvxpy as cp

    groups: dict[tuple, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(tuple(k), []).append(i)
    terms = []
    for (form, s), idx in groups.items():
        zi = z[idx] if len(z.shape) == 1 else z[idx, :]
        g = get_form(form).cvx_unit(zi, 1.0 if s is None else s)
        terms.append(cp.sum(cp.multiply(coef[idx], g)))
    return cp.sum(cp.hstack(terms)) if len(terms) > 1 else terms[0]


def envelope_tangent(form: str, params: Params, anchor: ArrayLike) -> np.ndarray:
    """Tangent point of the concave envelope of ``f`` on ``[anchor, inf)``.

    The envelope is the tangent line from ``(anchor, f(anchor))`` up to the returned
    spend ``x_T``, and ``f`` from there on. It equals ``f`` (``x_T = anchor``) when the
    anchor lies in the concave part (at or past :func:`inflection`). Vectorised over
    parameter arrays and anchors; solved by bisection on
    ``f'(x) (x - anchor) = f(x) - f(anchor)`` over ``x >= inflection``.
    """
    f = get_form(form)
    a = np.asarray(anchor, dtype=float)
    xi = np.asarray(f.inflection(params), dtype=float)
    if not np.isfinite(xi).all():
        raise NotConcaveError(
            f"{form} curve has no concave part: no concave envelope on a half-line"
        )
    xi, a = np.broadcast_arrays(xi, a)
    done = a >= xi
    fa = f.value(a, params)

    def h(x):
        return f.derivative(x, params) * (x - a) - (f.value(x, params) - fa)

    lo = np.maximum(xi, a).astype(float)
    hi = np.maximum(2.0 * lo, 1e-9)
    for _ in range(200):  # grow hi until the tangent lies below it
        grow = (h(hi) > 0) & ~done
        if not grow.any():
            break
        hi = np.where(grow, 2.0 * hi, hi)
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        pos = h(mid) > 0
        lo, hi = np.where(pos, mid, lo), np.where(pos, hi, mid)
    return np.where(done, a, 0.5 * (lo + hi))


def envelope_value(form: str, x: ArrayLike, params: Params, anchor: ArrayLike) -> np.ndarray:
    """The concave envelope of ``f`` on ``[anchor, inf)`` (see :func:`envelope_tangent`), at ``x``."""
    xt = envelope_tangent(form, params, anchor)
    f = get_form(form)
    x = np.asarray(x, dtype=float)
    line = f.value(xt, params) + f.derivative(xt, params) * (x - xt)
    return np.where(x < xt, line, f.value(x, params))


# ---------------------------------------------------------------------------------------------
# Piecewise-linear forms
# ---------------------------------------------------------------------------------------------


def concave_envelope(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Values at ``xs`` (increasing) of the upper concave hull of the points ``(xs, ys)``."""
    hull: list[int] = []
    for i in range(len(xs)):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            # b on or below the chord from a to i is not on the upper hull
            if (ys[b] - ys[a]) * (xs[i] - xs[a]) <= (ys[i] - ys[a]) * (xs[b] - xs[a]):
                hull.pop()
            else:
                break
        hull.append(i)
    return np.interp(xs, xs[hull], ys[hull])


@dataclass(frozen=True)
class Piecewise:
    """A piecewise-linear form of one curve on ``[xs[0], xs[-1]]``.

    Attributes
    ----------
    xs, ys : ndarray
        Breakpoints and the model's values there.
    under : float
        Largest amount by which the model under-states the curve (``max f - model``).
    over : float
        Largest amount by which it over-states it (``max model - f``).
    """

    xs: np.ndarray
    ys: np.ndarray
    under: float
    over: float

    @property
    def slopes(self) -> np.ndarray:
        w = np.diff(self.xs)
        return np.where(w > 0, np.diff(self.ys) / np.where(w > 0, w, 1.0), 0.0)

    @property
    def is_concave(self) -> bool:
        s = self.slopes
        return bool((np.diff(s) <= 1e-12 * max(1.0, float(np.abs(s).max(initial=0.0)))).all())


def piecewise(
    form: str, params: Params, lo: float, hi: float, pieces: int, *, envelope: bool = False
) -> Piecewise:
    """Interpolate the curve at ``pieces + 1`` equal-width breakpoints on ``[lo, hi]``.

    With ``envelope=True`` the values are those of the concave envelope of the
    breakpoints (a concave model that over-states an S-shaped curve). The errors are
    measured on a grid 40 times finer than the pieces.
    """
    xs = np.linspace(float(lo), float(hi), int(pieces) + 1)
    ys = np.asarray(value(form, xs, params), dtype=float)
    if envelope:
        ys = concave_envelope(xs, ys)
    fine = np.linspace(float(lo), float(hi), 40 * int(pieces) + 1)
    model = np.interp(fine, xs, ys)
    truth = value(form, fine, params)
    return Piecewise(
        xs, ys, float(max(0.0, (truth - model).max())), float(max(0.0, (model - truth).max()))
    )


# ---------------------------------------------------------------------------------------------
# Adstocks
# ---------------------------------------------------------------------------------------------


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
        d = float(decay)
        x0 = np.take(x, [0], axis=axis)
        out, _ = lfilter([1.0 - d], [1.0, -d], x, axis=axis, zi=d * x0)
        return out
    xm = np.moveaxis(x, axis, 0)
    out = np.empty(np.broadcast_shapes(xm.shape, (1,) + decay.shape), dtype=float)
    prev = xm[0]
    for t in range(xm.shape[0]):
        prev = (1.0 - decay) * xm[t] + decay * prev
        out[t] = prev
    return np.moveaxis(out, 0, axis)


def geometric_carry(x: np.ndarray, decay: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Geometric adstock of ``x`` (lines x days) from a given adstock ``start`` (lines) before day 0."""
    x = np.asarray(x, dtype=float)
    decay = np.asarray(decay, dtype=float)
    out = np.empty_like(x)
    prev = np.asarray(start, dtype=float)
    for t in range(x.shape[1]):
        prev = (1.0 - decay) * x[:, t] + decay * prev
        out[:, t] = prev
    return out


def geometric_marginal(v: np.ndarray, decay: np.ndarray) -> np.ndarray:
    """Outcome of one more unit of spend on each day, given ``v`` = outcome per unit of adstock (lines x days).

    The adjoint of :func:`geometric_carry`: ``m_t = (1 - decay) v_t + decay m_{t+1}``.
    """
    decay = np.asarray(decay, dtype=float)
    out = np.empty_like(v)
    nxt = np.zeros(v.shape[0])
    for t in range(v.shape[1] - 1, -1, -1):
        nxt = (1.0 - decay) * v[:, t] + decay * nxt
        out[:, t] = nxt
    return out


def geometric_adstock_weights(decay: float, max_lag: int) -> np.ndarray:
    """Normalised geometric lag weights over ``max_lag + 1`` lags (truncated, renormalised)."""
    w = (1.0 - decay) * float(decay) ** np.arange(max_lag + 1)
    return w / w.sum()


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


#: Adstock forms and their parameters.
ADSTOCKS: dict[str, tuple[str, ...]] = {
    "geometric": ("decay",),
    "weibull": ("shape", "scale", "max_lag"),
}


def adstock(x: np.ndarray, params: Mapping, *, axis: int = 0) -> np.ndarray:
    """Apply an adstock block (``{"form": "geometric", "decay": l}`` or weibull) along ``axis``."""
    form = params.get("form", "geometric")
    if form == "geometric":
        return geometric_adstock(x, params.get("decay", 0.0), axis=axis)
    if form == "weibull":
        w = weibull_adstock_weights(
            float(params["shape"]), float(params["scale"]), int(params["max_lag"])
        )
        return weighted_adstock(x, w, axis=axis)
    raise ValueError(f"unknown adstock form {form!r} (use {', '.join(ADSTOCKS)})")


def adstock_weights(params: Mapping, max_lag: int | None = None) -> np.ndarray:
    """Normalised lag weights of an adstock block (geometric truncated at ``max_lag``, default 60)."""
    form = params.get("form", "geometric")
    if form == "geometric":
        return geometric_adstock_weights(
            float(params.get("decay", 0.0)), 60 if max_lag is None else max_lag
        )
    if form == "weibull":
        return weibull_adstock_weights(
            float(params["shape"]),
            float(params["scale"]),
            int(params["max_lag"] if max_lag is None else max_lag),
        )
    raise ValueError(f"unknown adstock form {form!r} (use {', '.join(ADSTOCKS)})")


def hill(x: np.ndarray, half_saturation: ArrayLike, shape: ArrayLike) -> np.ndarray:
    """Hill saturation ``x^s / (K^s + x^s)`` in [0, 1) (the unit-``beta`` Hill curve)."""
    return HILL.value(x, {"beta": 1.0, "half_saturation": half_saturation, "shape": shape})


def saturation(form: str, x: ArrayLike, params: Params) -> np.ndarray:
    """The curve with ``beta = 1`` (Hill and exp in [0, 1), log unbounded)."""
    return value(form, x, {**params, "beta": 1.0})


def saturation_derivative(form: str, x: ArrayLike, params: Params) -> np.ndarray:
    """d saturation / d x."""
    return derivative(form, x, {**params, "beta": 1.0})
