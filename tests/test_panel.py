"""Each bad-input case of the panel contract: exit 2 and one line naming the file, column, geo or date."""

import numpy as np
import pandas as pd
import pytest

from causal.errors import DataError
from causal.panel import load_panel


@pytest.fixture
def panel_frame():
    dates = pd.date_range("2024-01-01", periods=10, freq="D").strftime("%Y-%m-%d")
    geos = ["a", "b", "c"]
    rng = np.random.default_rng(0)
    df = pd.DataFrame([(d, g) for d in dates for g in geos], columns=["date", "geo"])
    df["signups"] = rng.integers(50, 100, len(df)).astype(float)
    df["spend_ctv"] = rng.uniform(0, 10, len(df))
    df["price"] = 1.0
    return df


def _write(tmp_path, df, name="panel.csv"):
    path = tmp_path / name
    if name.endswith(".parquet"):
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)
    return path


def _validate(run_cli, path, *extra):
    code, out, err = run_cli("validate", "--data", str(path), *extra)
    return code, out, err


def _expect_error(run_cli, path, *needles, extra=()):
    code, _, err = _validate(run_cli, path, *extra)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    assert "Traceback" not in err
    return lines[0]


def test_valid_panel_csv_and_parquet(tmp_path, panel_frame, run_cli):
    for name in ("p.csv", "p.parquet"):
        code, out, _ = _validate(run_cli, _write(tmp_path, panel_frame, name))
        assert code == 0 and "3 geos x 10 days" in out and "ctv" in out


def test_missing_row(tmp_path, panel_frame, run_cli):
    df = panel_frame.drop(index=4)
    msg = _expect_error(
        run_cli, _write(tmp_path, df), "panel.csv", "geo 'b'", "2024-01-02", "--fill-missing zero"
    )
    assert "1 (date, geo) rows absent" in msg


def test_fill_missing_zero_is_explicit_and_counted(tmp_path, panel_frame, run_cli):
    df = panel_frame.drop(index=[4, 5])
    with pytest.warns(
        UserWarning, match="filled 2 absent"
    ):  # the command warns too, not only the report line
        code, out, _ = _validate(run_cli, _write(tmp_path, df), "--fill-missing", "zero")
    assert code == 0 and "filled 2 absent rows" in out
    with pytest.warns(UserWarning, match="filled 2 absent"):
        p = load_panel(df, fill_missing="zero")
    assert p.wide().loc["2024-01-02", "b"] == 0.0 and p.n_filled == 2


def test_duplicate_row(tmp_path, panel_frame, run_cli):
    df = pd.concat([panel_frame, panel_frame.iloc[[7]]])
    _expect_error(run_cli, _write(tmp_path, df), "duplicate row", "geo 'b'", "2024-01-03")


def test_nan_in_outcome(tmp_path, panel_frame, run_cli):
    panel_frame.loc[5, "signups"] = np.nan
    _expect_error(
        run_cli, _write(tmp_path, panel_frame), "column 'signups'", "NaN", "geo 'c'", "2024-01-02"
    )


def test_non_numeric_spend(tmp_path, panel_frame, run_cli):
    df = panel_frame.astype({"spend_ctv": object})
    df.loc[3, "spend_ctv"] = "n/a"
    _expect_error(
        run_cli,
        _write(tmp_path, df),
        "column 'spend_ctv'",
        "non-numeric",
        "'n/a'",
        "geo 'a'",
        "2024-01-02",
    )


def test_negative_spend(tmp_path, panel_frame, run_cli):
    panel_frame.loc[8, "spend_ctv"] = -5.0
    _expect_error(
        run_cli,
        _write(tmp_path, panel_frame),
        "negative spend",
        "spend_ctv",
        "geo 'c'",
        "2024-01-03",
    )


def test_irregular_frequency(tmp_path, panel_frame, run_cli):
    df = panel_frame[panel_frame.date != "2024-01-05"]
    _expect_error(
        run_cli, _write(tmp_path, df), "not at one regular frequency", "2024-01-04", "2024-01-06"
    )


def test_bad_date(tmp_path, panel_frame, run_cli):
    panel_frame.loc[0, "date"] = "yesterday"
    _expect_error(run_cli, _write(tmp_path, panel_frame), "column 'date'", "'yesterday'", "row 2")


def test_missing_outcome_column(tmp_path, panel_frame, run_cli):
    _expect_error(
        run_cli, _write(tmp_path, panel_frame), "no column 'sales'", "--y", extra=("--y", "sales")
    )


def test_missing_covariate_column(tmp_path, panel_frame, run_cli):
    _expect_error(
        run_cli, _write(tmp_path, panel_frame), "no column 'temp'", extra=("--columns", "temp")
    )


def test_missing_file_and_unknown_type(tmp_path, run_cli):
    _expect_error(run_cli, tmp_path / "nope.csv", "nope.csv", "no such file")
    (tmp_path / "p.xlsx").write_text("x")
    _expect_error(run_cli, tmp_path / "p.xlsx", "unknown file type")


def test_weekly_and_monthly_frequencies(panel_frame):
    weekly = panel_frame.copy()
    weekly["date"] = pd.to_datetime(weekly["date"]).map(
        lambda d: d + pd.Timedelta(days=6 * (d.day - 1))
    )
    p = load_panel(weekly)
    assert p.freq.startswith("W") and p.period_name == "week"
    monthly = panel_frame.copy()
    monthly["date"] = pd.to_datetime(monthly["date"]).map(lambda d: pd.Timestamp(2020, d.day, 1))
    assert load_panel(monthly).freq == "MS"


def test_unknown_geo_and_date_checks(panel_frame):
    p = load_panel(panel_frame)
    with pytest.raises(DataError, match="treated geo 'zz' is not in the panel"):
        p.check_geos(["a", "zz"], role="treated")
    with pytest.raises(DataError, match="2025-01-01 is outside the data"):
        p.check_date("2025-01-01", role="--start")
    with pytest.raises(DataError, match="'soon' is not a date"):
        p.check_date("soon")
    with pytest.raises(DataError, match="no spend column 'spend_tv'"):
        p.spend_column("tv")


def test_wide_is_dates_by_geos(panel_frame):
    p = load_panel(panel_frame)
    w = p.wide()
    assert w.shape == (10, 3) and list(w.columns) == ["a", "b", "c"]
    assert w.loc["2024-01-01", "b"] == panel_frame.loc[1, "signups"]


def test_empty_cells_in_an_unused_column_are_kept_and_said_not_dropped(tmp_path):
    import warnings as _w

    from causal.errors import DataError, IncompleteColumnWarning
    from causal.panel import load_panel

    rows = [
        f"2024-01-0{d},{g},{10 + d},{1.0 + d},{'' if (d, g) == (2, 'b') else 5.0}"
        for d in range(1, 6)
        for g in ("a", "b")
    ]
    path = tmp_path / "p.csv"
    path.write_text("date,geo,signups,spend_tv,price\n" + "\n".join(rows) + "\n")
    with _w.catch_warnings(record=True) as caught:
        _w.simplefilter("always")
        panel = load_panel(path)
    assert any(
        issubclass(w.category, IncompleteColumnWarning) and "'price'" in str(w.message)
        for w in caught
    )
    assert panel.incomplete == ("price",) and "price" not in panel.covariates
    assert panel.data["price"].isna().sum() == 1  # kept as written, not filled
    with pytest.raises(DataError, match="column 'price' has a missing"):
        load_panel(path, columns=("price",))  # a command that uses it refuses it
