"""The response-curve data model of ``curves.json``: parse, validate, evaluate.

A :class:`CurveSet` holds one :class:`Curve` per line (a channel in a market).
Each curve gives the steady-state outcome per period for a steady spend ``x``
per period (INTERFACE.md); the formulas are those of
:mod:`causal.response`:

``hill``, ``exp``, ``log``, ``power`` and ``linear``, each defined once in
:mod:`causal.response` (value, derivatives, cvxpy and piecewise forms).

Validation happens once, here, at the boundary: every error is one line naming
the file, the line (``channels[i]`` with its name and market) and the key.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from causal import response as R
from causal.errors import ConfigError, DataError
from causal.jsonfile import read_json

#: Largest magnitude of any number in a curves file (outcomes, spends, scales).
MAX_VALUE = 1e13
#: Required parameters of each response form (besides ``form``).
FORMS: dict[str, tuple[str, ...]] = {name: f.params for name, f in R.FORMS.items()}
#: The periods a panel can have (``Panel.period_name``): spend and outcome are per one of them.
PERIODS = ("day", "week", "month", "year")
_OPTIONAL = {name: tuple(k for k, _ in f.optional) for name, f in R.FORMS.items() if f.optional}


@dataclass(frozen=True)
class Curve:
    """One line's response curve and its spend bounds.

    Parameters
    ----------
    name : str
        Channel name.
    market : str or None
        Market id; ``None`` means one market for the whole business.
    form : str
        One of :data:`FORMS`.
    params : dict
        The form's parameters (``beta``, ``half_saturation``, ``shape``, ``scale``, ``exponent``).
    current_spend, min_spend, max_spend : float or None
        Spend per period now, and the line's floor and ceiling (``None``: none given).
    decay : float, default=0.0
        Geometric adstock decay (carryover share per period) for time plans.
    contribution : dict or None
        Passed through unchanged.
    """

    name: str
    market: str | None
    form: str
    params: dict[str, float]
    current_spend: float | None = None
    min_spend: float | None = None
    max_spend: float | None = None
    decay: float = 0.0
    contribution: dict | None = None
    extra: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``name/market`` (or ``name``): how errors and reports name the line."""
        return self.name if self.market is None else f"{self.name}/{self.market}"

    @property
    def shape(self) -> float:
        return float(self.params.get("shape", 1.0)) if self.form == "hill" else 1.0

    @property
    def is_concave(self) -> bool:
        """True unless an S-shaped Hill (shape > 1) or a convex power (exponent > 1)."""
        return bool(R.is_concave(self.form, self.params))

    @property
    def inflection(self) -> float:
        """Spend from which the curve is concave (0 for concave curves)."""
        return float(R.inflection(self.form, self.params))

    @property
    def structure(self) -> tuple:
        """Form and structural exponent: what fixes the cvxpy expression tree."""
        return R.structure(self.form, self.params)

    def evaluate(self, x: np.ndarray | float) -> np.ndarray:
        """Steady-state outcome per period at spend ``x`` per period."""
        return R.value(self.form, x, self.params)

    def marginal(self, x: np.ndarray | float) -> np.ndarray:
        """Derivative of :meth:`evaluate`: incremental outcome per extra unit of spend."""
        return R.derivative(self.form, x, self.params)

    def curvature(self, x: np.ndarray | float) -> np.ndarray:
        """Second derivative of :meth:`evaluate`."""
        return R.second_derivative(self.form, x, self.params)

    def scaling(self, reference: float = 1.0) -> tuple[float, float]:
        """``(coef, scale)`` such that the curve is ``coef * g(x / scale)`` (see :mod:`causal.response`)."""
        c, k = R.scaling(self.form, self.params, reference)
        return float(c), float(k)

    def to_dict(self) -> dict[str, Any]:
        """The curves.json line, with the keys INTERFACE.md names."""
        out: dict[str, Any] = {
            "name": self.name,
            "market": self.market,
            "response": {"form": self.form, **self.params},
            "current_spend": self.current_spend,
            "min_spend": self.min_spend,
            "max_spend": self.max_spend,
        }
        if self.decay:
            out["adstock"] = {"form": "geometric", "decay": self.decay}
        if self.contribution is not None:
            out["contribution"] = self.contribution
        out.update(self.extra)
        return out


@dataclass(frozen=True)
class CurveSet:
    """All lines of a curves.json, in file order.

    Attributes
    ----------
    curves : list of Curve
    outcome, period : str
    source : str
        The file the curves came from (for error messages), or ``"<dict>"``.
    draws : list of dict
        Posterior draws per line (curves.json's ``response_draws`` and ``adstock_draws``),
        each ``{parameter: array of n_draws}``; empty when the file has none. Draw ``j`` is
        coherent across lines (a joint posterior).
    meta : dict
        Top-level keys passed through untouched (``draws``, ``aggregates``: cluster-level
        lines for reports, never planned).
    """

    curves: list[Curve]
    outcome: str = "signups"
    period: str = "day"
    source: str = "<dict>"
    draws: list = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    @property
    def n_draws(self) -> int:
        """Number of posterior draws in the file (0: none)."""
        return len(next(iter(self.draws[0].values()))) if self.draws and self.draws[0] else 0

    def draw(self, j: int) -> CurveSet:
        """The curves at posterior draw ``j``: drawn parameters replace the point values."""
        curves = []
        for c, d in zip(self.curves, self.draws):
            params = {**c.params, **{k: float(v[j]) for k, v in d.items() if k != "decay"}}
            decay = float(d["decay"][j]) if "decay" in d else c.decay
            curves.append(
                Curve(
                    c.name,
                    c.market,
                    c.form,
                    params,
                    c.current_spend,
                    c.min_spend,
                    c.max_spend,
                    decay,
                    c.contribution,
                    c.extra,
                )
            )
        return CurveSet(curves, self.outcome, self.period, self.source)

    def draw_values(self, spend: np.ndarray) -> np.ndarray:
        """Outcome per line (rows) under every draw (columns) at spend per line, vectorised."""
        spend = np.asarray(spend, dtype=float)
        out = np.empty((len(self.curves), self.n_draws))
        for i, (c, d) in enumerate(zip(self.curves, self.draws)):
            params = {**c.params, **{k: v for k, v in d.items() if k != "decay"}}
            out[i] = R.value(c.form, spend[i], params)
        return out

    def __len__(self) -> int:
        return len(self.curves)

    def __iter__(self):
        return iter(self.curves)

    @property
    def labels(self) -> list[str]:
        return [c.label for c in self.curves]

    @property
    def markets(self) -> list[str | None]:
        return [c.market for c in self.curves]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.curves]

    def current(self, *, required: bool = False, why: str = "") -> np.ndarray:
        """Current spend per line; missing ones are NaN, or an error if ``required``."""
        out = np.array(
            [np.nan if c.current_spend is None else c.current_spend for c in self.curves]
        )
        if required and np.isnan(out).any():
            bad = self.curves[int(np.flatnonzero(np.isnan(out))[0])]
            raise ConfigError(
                f"{self.source}: line {bad.label} has no current_spend, which {why or 'is required'}"
            )
        return out

    def evaluate(self, spend: np.ndarray) -> np.ndarray:
        """Outcome per line at spend per line (vector of ``len(self)``)."""
        spend = np.asarray(spend, dtype=float)
        return np.array([c.evaluate(x) for c, x in zip(self.curves, spend)], dtype=float)

    def marginal(self, spend: np.ndarray) -> np.ndarray:
        spend = np.asarray(spend, dtype=float)
        return np.array([c.marginal(x) for c, x in zip(self.curves, spend)], dtype=float)

    def _by_form(self, x: np.ndarray, fn) -> np.ndarray:
        # One vectorised call per form: the parameters of its lines as arrays broadcast over days.
        x = np.asarray(x, dtype=float)
        out = np.empty_like(x)
        forms = np.array([c.form for c in self.curves])
        for form in dict.fromkeys(forms):
            idx = np.flatnonzero(forms == form)
            keys = set().union(*(self.curves[i].params for i in idx))
            params = {
                k: np.array(
                    [
                        float(
                            self.curves[i].params.get(
                                k, dict(R.FORMS[form].optional).get(k, np.nan)
                            )
                        )
                        for i in idx
                    ]
                ).reshape((-1,) + (1,) * (x.ndim - 1))
                for k in keys
            }
            out[idx] = fn(form, x[idx], params)
        return out

    def evaluate_lines(self, x: np.ndarray) -> np.ndarray:
        """Outcome at spend ``x`` of shape ``(lines, ...)`` (e.g. lines x days), one vectorised call per form."""
        return self._by_form(x, R.value)

    def marginal_lines(self, x: np.ndarray) -> np.ndarray:
        """Marginal outcome at ``x`` of shape ``(lines, ...)``."""
        return self._by_form(x, R.derivative)

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "period": self.period,
            "channels": [c.to_dict() for c in self.curves],
            **self.meta,
        }

    def with_params(self, params: list[dict[str, float]]) -> CurveSet:
        """The same lines with other response parameters (e.g. a posterior sample)."""
        curves = [
            Curve(
                c.name,
                c.market,
                c.form,
                dict(p),
                c.current_spend,
                c.min_spend,
                c.max_spend,
                c.decay,
                c.contribution,
                c.extra,
            )
            for c, p in zip(self.curves, params)
        ]
        return CurveSet(curves, self.outcome, self.period, self.source, meta=self.meta)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<dict>") -> CurveSet:
        """Parse and validate a curves.json document (see INTERFACE.md)."""
        if not isinstance(data, dict):
            raise DataError(
                f"{source}: expected a JSON object with a 'channels' list, got {type(data).__name__}"
            )
        channels = data.get("channels")
        if not isinstance(channels, list) or not channels:
            raise DataError(f"{source}: key 'channels' must be a non-empty list of curve lines")
        curves = [_parse_line(i, line, source) for i, line in enumerate(channels)]
        seen: dict[tuple, int] = {}
        for i, c in enumerate(curves):
            key = (c.name, c.market)
            if key in seen:
                raise DataError(
                    f"{source}: channels[{i}] ({c.label}) duplicates channels[{seen[key]}]; "
                    "each (name, market) must appear once"
                )
            seen[key] = i
        for key, default in (("outcome", "signups"), ("period", "day")):
            v = data.get(key, default)
            if not isinstance(v, str) or not v:
                raise DataError(
                    f"{source}: key '{key}' must be a non-empty string, got {json.dumps(v)}"
                )
        if data.get("period", "day") not in PERIODS:
            raise DataError(
                f"{source}: key 'period' is {json.dumps(data['period'])}, not a period of a panel "
                f"(use {', '.join(PERIODS)})"
            )
        draws = _parse_draws(data, curves, source)
        meta = {k: data[k] for k in ("draws", "aggregates", "identification") if k in data}
        if "aggregates" in data and not isinstance(data["aggregates"], list):
            raise DataError(
                f"{source}: key 'aggregates' must be a list of curve lines (reports only)"
            )
        if "identification" in data:
            _check_identification(data["identification"], source)
        return cls(
            curves,
            str(data.get("outcome", "signups")),
            str(data.get("period", "day")),
            source,
            draws,
            meta,
        )

    @classmethod
    def load(cls, path: str | Path) -> CurveSet:
        """Read and validate a curves.json file."""
        return cls.from_dict(read_json(path, "curves file"), source=str(path))


def _number(
    value: Any,
    where: str,
    key: str,
    *,
    allow_none: bool = False,
    positive: bool = False,
    nonneg: bool = False,
) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(f"{where}: key '{key}' must be a number, got {json.dumps(value)}")
    v = float(value)
    if not math.isfinite(v):
        raise DataError(f"{where}: key '{key}' must be finite, got {value}")
    if abs(v) > MAX_VALUE:
        raise DataError(
            f"{where}: key '{key}' is {value:g}, beyond {MAX_VALUE:g} (the largest value the "
            "allocator's arithmetic keeps exact to the cent)"
        )
    if positive and v <= 0:
        raise DataError(f"{where}: key '{key}' must be > 0, got {value}")
    if nonneg and v < 0:
        raise DataError(f"{where}: key '{key}' must be >= 0, got {value}")
    return v


def _check_identification(ident, source: str) -> None:
    """curves.json's ``identification`` (read by the plan report): per channel an object whose
    ``lifts`` is a list and whose ``half_saturation_at_grid_edge`` is null or carries a share in [0, 1]."""
    if not isinstance(ident, dict):
        raise DataError(f"{source}: key 'identification' must be an object of channels")
    for ch, v in ident.items():
        where = f"{source}: identification.{ch}"
        if not isinstance(v, dict):
            raise DataError(f"{where} must be an object, got {json.dumps(v)}")
        if not isinstance(v.get("lifts", []), list):
            raise DataError(f"{where}.lifts must be a list, got {json.dumps(v['lifts'])}")
        edge = v.get("half_saturation_at_grid_edge")
        share = edge.get("share") if isinstance(edge, dict) else None
        if edge is not None and not (
            isinstance(share, (int, float)) and not isinstance(share, bool) and 0 <= share <= 1
        ):
            raise DataError(
                f"{where}.half_saturation_at_grid_edge must be null or an object with a share in "
                f"[0, 1], got {json.dumps(edge)}"
            )


def _parse_draws(data: dict, curves: list[Curve], source: str) -> list[dict[str, np.ndarray]]:
    """Validate the posterior draws: top-level ``draws: {n, seed}`` and per line ``response_draws``."""
    meta = data.get("draws")
    with_draws = [
        i for i, c in enumerate(curves) if "response_draws" in c.extra or "adstock_draws" in c.extra
    ]
    if meta is None:
        if with_draws:
            raise DataError(
                f"{source}: channels[{with_draws[0]}] has 'response_draws' but the file has no top-level "
                'key \'draws\' ({"n": N, "seed": S})'
            )
        return []
    if (
        not isinstance(meta, dict)
        or isinstance(meta.get("n"), bool)
        or not isinstance(meta.get("n"), int)
        or meta["n"] < 1
    ):
        raise DataError(
            f'{source}: key \'draws\' must be an object {{"n": N >= 1, "seed": S}}, got {json.dumps(meta)}'
        )
    n = meta["n"]
    out = []
    for i, c in enumerate(curves):
        where = f"{source}: channels[{i}] ({c.label})"
        rd = c.extra.get("response_draws")
        if not isinstance(rd, dict) or not rd:
            raise DataError(
                f"{where}: key 'response_draws' must be an object of parameter -> list of {n} draws "
                "(the file's 'draws.n')"
            )
        allowed = set(FORMS[c.form]) | set(_OPTIONAL.get(c.form, ()))
        d: dict[str, np.ndarray] = {}
        blocks = [("response_draws", rd)]
        if c.extra.get("adstock_draws") is not None:
            ad = c.extra["adstock_draws"]
            if not isinstance(ad, dict) or set(ad) - {"decay"}:
                raise DataError(
                    f"{where}: key 'adstock_draws' must be {{\"decay\": [{n} numbers]}}"
                )
            blocks.append(("adstock_draws", ad))
        for block, values in blocks:
            for key, v in values.items():
                name = f"{block}.{key}"
                if block == "response_draws" and key not in allowed:
                    raise DataError(
                        f"{where}: key '{name}' is not a parameter of form '{c.form}' "
                        f"(use {', '.join(sorted(allowed))})"
                    )
                if not isinstance(v, list) or len(v) != n:
                    got = f"{len(v)} values" if isinstance(v, list) else type(v).__name__
                    raise DataError(
                        f"{where}: key '{name}' must be a list of {n} numbers (draws.n), got {got}"
                    )
                if any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in v):
                    raise DataError(f"{where}: key '{name}' holds a non-number")
                arr = np.asarray(v, dtype=float)
                bad = ~np.isfinite(arr) | (np.abs(arr) > MAX_VALUE)
                if key in ("half_saturation", "scale", "shape", "exponent"):
                    bad |= arr <= 0
                if key == "decay":
                    bad |= (arr < 0) | (arr >= 1)
                if key == "beta" and (arr < 0).any() and not bad.any():
                    # As 'response.beta': a negative effect (calibrate --allow-negative) would turn
                    # the concave objective convex, so the allocator refuses it in every draw too.
                    j = int(np.flatnonzero(arr < 0)[0])
                    raise DataError(
                        f"{where}: key '{name}[{j}]' is {v[j]!r}, a negative effect; the allocator "
                        "takes effects >= 0 in every draw, as in 'response.beta'"
                    )
                if bad.any():
                    j = int(np.flatnonzero(bad)[0])
                    raise DataError(
                        f"{where}: key '{name}' draw {j} is {v[j]!r}, out of range for {key}"
                    )
                d[key] = arr
        out.append(d)
    return out


def _parse_line(i: int, line: Any, source: str) -> Curve:
    where = f"{source}: channels[{i}]"
    if not isinstance(line, dict):
        raise DataError(f"{where}: expected an object, got {type(line).__name__}")
    name = line.get("name")
    if not isinstance(name, str) or not name:
        raise DataError(f"{where}: key 'name' must be a non-empty string")
    market = line.get("market")
    # A market id is text (a whole number such as a DMA code is read as its digits); anything else is a mistake.
    if isinstance(market, bool) or not (market is None or isinstance(market, (str, int))):
        raise DataError(
            f"{where} ({name}): key 'market' must be a string or null, got {json.dumps(market)}"
        )
    if market is not None:
        market = str(market)
    where = f"{where} ({name if market is None else f'{name}/{market}'})"
    resp = line.get("response")
    if not isinstance(resp, dict):
        raise DataError(f"{where}: key 'response' must be an object with a 'form'")
    form = resp.get("form")
    if not isinstance(form, str) or form not in FORMS:
        raise DataError(
            f"{where}: unknown response form {json.dumps(form)} in key 'response.form' "
            f"(use {', '.join(FORMS)})"
        )
    params: dict[str, float] = {}
    for key in FORMS[form]:
        if key not in resp:
            raise DataError(f"{where}: response form '{form}' needs key 'response.{key}'")
        params[key] = _number(
            resp[key],
            where,
            f"response.{key}",
            positive=key in ("half_saturation", "scale"),
            nonneg=key == "beta",
        )
    for key in _OPTIONAL.get(form, ()):
        if resp.get(key) is not None:
            params[key] = _number(resp[key], where, f"response.{key}", positive=True)
    if form == "power" and params["exponent"] <= 0:
        raise DataError(f"{where}: key 'response.exponent' must be > 0, got {params['exponent']}")
    cur = _number(line.get("current_spend"), where, "current_spend", allow_none=True, nonneg=True)
    lo = _number(line.get("min_spend"), where, "min_spend", allow_none=True, nonneg=True)
    hi = _number(line.get("max_spend"), where, "max_spend", allow_none=True, nonneg=True)
    if lo is not None and hi is not None and lo > hi:
        raise DataError(f"{where}: min_spend {lo:g} is above max_spend {hi:g}")
    decay = 0.0
    ad = line.get("adstock")
    if ad is not None:
        if not isinstance(ad, dict):
            raise DataError(
                f'{where}: key \'adstock\' must be an object like {{"form": "geometric", "decay": 0.4}}'
            )
        if ad.get("form", "geometric") != "geometric":
            raise DataError(
                f"{where}: adstock form {json.dumps(ad.get('form'))} in key 'adstock.form' is not "
                "supported by the allocator (use geometric)"
            )
        decay = _number(ad.get("decay", 0.0), where, "adstock.decay", nonneg=True)
        if decay >= 1.0:
            raise DataError(f"{where}: key 'adstock.decay' must be in [0, 1), got {decay}")
    known = {
        "name",
        "market",
        "response",
        "adstock",
        "current_spend",
        "min_spend",
        "max_spend",
        "contribution",
    }
    extra = {k: v for k, v in line.items() if k not in known}
    return Curve(name, market, form, params, cur, lo, hi, decay, line.get("contribution"), extra)
