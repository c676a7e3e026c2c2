"""Property-based tests of every input loader (issue 17): malformed files never give a traceback or a silent change.

Each loader is driven by ``hypothesis`` with generated inputs: a valid file
with one hostile mutation (a panel), arbitrary text and near-JSON (the JSON
reader), and arbitrary JSON values in the shape of the file (curves, lifts,
registry designs, constraints). The property is the same for all: the loader
returns a value or raises a :class:`~causal.errors.LiftlabError` (exit 2 on
the command line), never another exception; and where a mutation breaks the
file contract, it raises; where it does not, the result is what the file
says, unchanged.

A quick run (100 examples per loader, derandomised: the same examples every
run) is in the default suite; ``pytest -m slow`` runs 1,000 per loader.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from causal.errors import LiftlabError

QUICK = settings(
    max_examples=100,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SLOW = settings(QUICK, max_examples=1000)


# -- the panel loader ----------------------------------------------------------------------------------
def _base_panel() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    dates = pd.date_range("2024-01-01", periods=8, freq="D")
    rows = [
        {
            "date": d.date().isoformat(),
            "geo": g,
            "signups": float(rng.integers(50, 100)),
            "spend_ctv": float(rng.integers(0, 40)),
            "spend_social": float(rng.integers(0, 40)),
            "competitor_price": round(float(rng.uniform(9, 11)), 2),
            "region": "north" if g < "G2" else "south",
        }
        for d in dates
        for g in ("G0", "G1", "G2")
    ]
    return pd.DataFrame(rows)


BASE = _base_panel()
NUMERIC = ["signups", "spend_ctv", "spend_social", "competitor_price"]
HOSTILE_CELLS = [
    "",
    "abc",
    "n/a",
    "NaN",
    "inf",
    "-inf",
    "1e999",
    "-5",
    "True",
    "1,5",
    " ",
    "0x10",
    "—",
    "1e-400",
]
HOSTILE_DATES = [
    "2024-01-02T00:00:00-05:00",
    "2024-01-02T12:00",
    "2024-01-02Z",
    "2024-13-01",
    "02/01/2024",
    "2024-01-02 00:00:00+00:00",
    "yesterday",
    "",
    "2024-1-2",
    "20240102",
]

# A mutation: (kind, row, column, value). Benign kinds must load to the same numbers; the others must be refused.
mutations = st.one_of(
    st.tuples(
        st.just("cell"),
        st.integers(0, len(BASE) - 1),
        st.sampled_from(NUMERIC),
        st.sampled_from(HOSTILE_CELLS),
    ),
    st.tuples(
        st.just("cell"),
        st.integers(0, len(BASE) - 1),
        st.sampled_from(NUMERIC),
        st.text(min_size=0, max_size=6),
    ),
    st.tuples(
        st.just("date"),
        st.integers(0, len(BASE) - 1),
        st.just("date"),
        st.sampled_from(HOSTILE_DATES),
    ),
    st.tuples(st.just("drop_row"), st.integers(0, len(BASE) - 1), st.none(), st.none()),
    st.tuples(st.just("dup_row"), st.integers(0, len(BASE) - 1), st.none(), st.none()),
    st.tuples(
        st.just("dup_col"),
        st.integers(0, 3),
        st.sampled_from(["spend_ctv", "signups", "geo", "date"]),
        st.none(),
    ),
    st.tuples(st.just("shuffle"), st.integers(0, 2**16), st.none(), st.none()),
    st.tuples(st.just("truncate"), st.integers(0, 2000), st.none(), st.none()),
    st.tuples(st.just("bytes"), st.integers(0, 2000), st.none(), st.binary(min_size=1, max_size=8)),
)


def _mutate(kind: str, row: int, col: str | None, value) -> tuple[bytes, str]:
    """The CSV bytes after one mutation, and what the loader must do: 'same', 'refuse' or 'either'."""
    frame = BASE.astype(object).copy()
    expect = "refuse"
    if kind == "cell":
        frame.loc[row, col] = value
        try:
            number = float(str(value).strip())
            ok = math.isfinite(number) and not (col.startswith("spend_") and number < 0)
        except ValueError:
            ok = False
        expect = "either" if ok else "refuse"  # a number written differently is still that number
        if str(value).strip() == "" and col != "signups" and not col.startswith("spend_"):
            expect = "incomplete"  # an empty covariate cell: kept, said aloud, not a covariate
    elif kind == "date":
        # The same calendar day written another ISO way ("2024-1-2", "20240102") may be read as that day.
        original = frame.loc[row, "date"]
        frame.loc[row, "date"] = value
        try:
            ts = pd.Timestamp(value)
            same = (
                ts is not pd.NaT
                and ts.tz is None
                and ts == ts.normalize()
                and ts == pd.Timestamp(original)
            )
        except (ValueError, TypeError):
            same = False
        expect = "either" if same else "refuse"
    elif kind == "drop_row":
        frame = frame.drop(index=row)
    elif kind == "dup_row":
        frame = pd.concat([frame, frame.iloc[[row]]])
    elif kind == "dup_col":
        text = frame.to_csv(index=False).splitlines()
        cells = [
            line + "," + str(frame.iloc[i - 1][col]) if i else line + "," + col
            for i, line in enumerate(text)
        ]
        return ("\n".join(cells) + "\n").encode(), "refuse"
    elif kind == "shuffle":
        frame = frame.sample(frac=1.0, random_state=row)[
            list(np.random.default_rng(row).permutation(frame.columns))
        ]
        expect = "same"
    data = frame.to_csv(index=False).encode()
    if kind == "truncate":
        data, expect = data[: row % len(data)], "either"
    elif kind == "bytes":
        at = row % len(data)
        data, expect = data[:at] + value + data[at:], "either"
    return data, expect


def check_panel(tmp_path: Path, mutation) -> None:
    from causal.panel import load_panel

    data, expect = _mutate(*mutation)
    path = tmp_path / "panel.csv"
    path.write_bytes(data)
    try:
        panel = load_panel(path)
    except LiftlabError:
        event(f"{mutation[0]}: refused")
        assert expect != "same", mutation
        return
    event(f"{mutation[0]}: loaded")
    assert expect != "refuse", (mutation, data.decode(errors="replace")[:400])
    if expect == "incomplete":
        col = mutation[2]
        assert col in panel.incomplete and col not in panel.covariates, mutation
    # Nothing silently dropped or changed: every numeric cell present is the one written.
    got = panel.data.set_index(["date", "geo"]).sort_index()
    raw = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    raw["date"] = pd.to_datetime(raw["date"], format="ISO8601")
    raw = raw.set_index(["date", "geo"]).sort_index()
    assert len(got) == len(raw) == len(BASE) or panel.n_filled == 0 and len(got) == len(raw)
    for col in [c for c in NUMERIC if c in raw.columns]:
        np.testing.assert_array_equal(
            got[col].to_numpy(dtype=float),
            pd.to_numeric(raw[col].replace("", np.nan)).astype(float).to_numpy(),
        )
    assert set(panel.covariates) | set(panel.incomplete) >= {
        c for c in ("competitor_price",) if c in raw.columns
    }


@QUICK
@given(mutation=mutations)
def test_fuzz_panel_loader(tmp_path, mutation):
    check_panel(tmp_path, mutation)


@pytest.mark.slow
@SLOW
@given(mutation=mutations)
def test_fuzz_panel_loader_slow(tmp_path, mutation):
    check_panel(tmp_path, mutation)


# -- the JSON reader -------------------------------------------------------------------------------------
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=10,
)
near_json = st.one_of(
    st.text(max_size=40),
    json_values.map(json.dumps),
    st.tuples(
        json_values.map(json.dumps),
        st.integers(0, 60),
        st.sampled_from(
            ["NaN", "Infinity", "-Infinity", ",", "}", "]", '"', ":", "\\", "\x00", "\ud800"]
        ),
    ).map(lambda t: t[0][: t[1] % (len(t[0]) + 1)] + t[2] + t[0][t[1] % (len(t[0]) + 1) :]),
    st.tuples(st.text(min_size=1, max_size=3), json_values, json_values).map(
        lambda t: (
            "{"
            + f"{json.dumps(t[0])}: {json.dumps(t[1])}, {json.dumps(t[0])}: {json.dumps(t[2])}"
            + "}"
        )
    ),
)


def check_read_json(tmp_path: Path, text: str) -> None:
    from causal.jsonfile import read_json

    path = tmp_path / "in.json"
    path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
    try:
        value = read_json(path, "file")
    except LiftlabError as exc:
        event("refused")
        assert str(path) in str(exc)
        return
    event("accepted")
    # Accepted: it is strict JSON, and Python's parser reads the same value from it.
    json.dumps(value, allow_nan=False)  # no NaN or Infinity anywhere in it
    assert value == json.loads(text)
    assert _finite_numbers(value)


@QUICK
@given(text=near_json)
def test_fuzz_read_json(tmp_path, text):
    check_read_json(tmp_path, text)


@pytest.mark.slow
@SLOW
@given(text=near_json)
def test_fuzz_read_json_slow(tmp_path, text):
    check_read_json(tmp_path, text)


# -- JSON files in their shapes: curves, lifts, registry designs, constraints ---------------------------
def _near(good: dict) -> st.SearchStrategy:
    """``good`` with one key replaced by an arbitrary JSON value, removed, or left alone."""
    keys = sorted(good)
    return st.one_of(
        st.just(good),
        st.tuples(st.sampled_from(keys), json_values).map(lambda t: {**good, t[0]: t[1]}),
        st.sampled_from(keys).map(lambda k: {k2: v for k2, v in good.items() if k2 != k}),
        json_values,
    )


GOOD_LINE = {
    "name": "ctv",
    "market": "NA",
    "response": {"form": "hill", "beta": 100.0, "half_saturation": 50.0, "shape": 1.0},
    "current_spend": 40.0,
    "min_spend": 0.0,
    "max_spend": None,
}
curves_docs = st.one_of(
    _near(GOOD_LINE).map(lambda line: {"channels": [line]}),
    _near(GOOD_LINE["response"]).map(lambda r: {"channels": [{**GOOD_LINE, "response": r}]}),
    _near({"channels": [GOOD_LINE], "outcome": "signups", "period": "day"}),
)


def _finite_numbers(obj) -> bool:
    if isinstance(obj, float):
        return math.isfinite(obj)
    if isinstance(obj, dict):
        return all(_finite_numbers(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return all(_finite_numbers(v) for v in obj)
    return True


def check_curves(doc) -> None:
    from allocation.curves import CurveSet

    try:
        curves = CurveSet.from_dict(doc, source="c.json")
    except LiftlabError:
        event("refused")
        return
    event("accepted")
    out = curves.to_dict()
    assert _finite_numbers(out)
    for c in curves.curves:
        assert isinstance(c.name, str) and (c.market is None or isinstance(c.market, str))


def test_curves_response_form_of_the_wrong_type_is_a_data_error():
    check_curves_known(
        {"channels": [{**GOOD_LINE, "response": {**GOOD_LINE["response"], "form": []}}]}
    )


def test_curves_market_of_the_wrong_type_is_a_data_error():
    check_curves_known({"channels": [{**GOOD_LINE, "market": {"id": "NA"}}]})


def check_curves_known(doc) -> None:
    from allocation.curves import CurveSet

    with pytest.raises(LiftlabError):
        CurveSet.from_dict(doc, source="c.json")


@QUICK
@given(doc=curves_docs)
def test_fuzz_curves(doc):
    check_curves(doc)


@pytest.mark.slow
@SLOW
@given(doc=curves_docs)
def test_fuzz_curves_slow(doc):
    check_curves(doc)


GOOD_LIFT = {
    "channel": "ctv",
    "treated": ["G0", "G1"],
    "test_period": ["2024-01-05", "2024-01-08"],
    "incremental": -120.0,
    "incremental_ci": [-200.0, -40.0],
    "confidence": 0.9,
    "spend_delta": -300.0,
}
lift_docs = _near(GOOD_LIFT)


def check_lift(doc) -> None:
    from allocation.calibration import Lift

    try:
        lift = Lift.from_dict(doc, "lift.json")
    except LiftlabError:
        event("refused")
        return
    event("accepted")
    assert math.isfinite(lift.spend_delta) and all(math.isfinite(v) for v in lift.incremental_ci)
    assert math.isfinite(lift.incremental)
    assert isinstance(lift.channel, str) and all(isinstance(g, str) for g in lift.treated)


@QUICK
@given(doc=lift_docs)
def test_fuzz_lift(doc):
    check_lift(doc)


@pytest.mark.slow
@SLOW
@given(doc=lift_docs)
def test_fuzz_lift_slow(doc):
    check_lift(doc)


GOOD_DESIGN = {
    "outcome": "signups",
    "estimator": "sc",
    "alpha": 0.1,
    "treated": ["G0", "G1"],
    "control": ["G2"],
    "duration_days": 28,
    "cells": [{"name": "low", "treated": ["G0"]}, {"name": "high", "treated": ["G1"]}],
}
design_docs = _near(GOOD_DESIGN)


def check_design(doc) -> None:
    from experiments.registry import design_defaults

    try:
        got = design_defaults(doc)
    except LiftlabError:
        event("refused")
        return
    event("accepted")
    # No silent conversion: geo lists are the lists written, numbers the numbers written.
    for geos in got.get("cells", {}).values():
        assert isinstance(geos, list) and all(isinstance(g, str) for g in geos)
    if "duration_days" in got:
        assert got["duration_days"] == doc["duration_days"]
    if "confidence" in got:
        assert got["confidence"] == pytest.approx(1 - doc["alpha"])
    for key in ("estimator", "outcome"):
        if key in got:
            assert got[key] == doc[key].strip()


@QUICK
@given(doc=design_docs)
def test_fuzz_registry_design(doc):
    check_design(doc)


@pytest.mark.slow
@SLOW
@given(doc=design_docs)
def test_fuzz_registry_design_slow(doc):
    check_design(doc)


GOOD_RULES = {"budget": 1000.0, "max_change": 0.15, "commitments": {"ctv": 10.0}, "reserve": 0.0}
rules_docs = _near(GOOD_RULES)


def check_rules(tmp_path: Path, doc) -> None:
    from allocation.business_rules import Rules

    path = tmp_path / "constraints.json"
    path.write_text(json.dumps(doc))
    try:
        rules = Rules.load(path)
    except LiftlabError:
        event("refused")
        return
    event("accepted")
    assert _finite_numbers(rules.to_dict())


def test_constraints_mapping_of_the_wrong_type_is_a_data_error(tmp_path):
    from allocation.business_rules import Rules

    (tmp_path / "c.json").write_text(json.dumps({**GOOD_RULES, "commitments": None}))
    with pytest.raises(LiftlabError):
        Rules.load(tmp_path / "c.json")


@QUICK
@given(doc=rules_docs)
def test_fuzz_constraints(tmp_path, doc):
    check_rules(tmp_path, doc)


@pytest.mark.slow
@SLOW
@given(doc=rules_docs)
def test_fuzz_constraints_slow(tmp_path, doc):
    check_rules(tmp_path, doc)
