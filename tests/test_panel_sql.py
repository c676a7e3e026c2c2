"""Panels read from a database give exactly the readout of the same rows read from a CSV (issue 18)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import reference_file

from causal.errors import DataError
from causal.panel import load_panel
from causal.panel_sql import is_database_url, read_sql_panel
from experiments.readout import read_out

GEOLIFT = reference_file("geolift", "GeoLift_Test.csv")
QUERY = "SELECT date, location, Y FROM panel ORDER BY date, location"


def _readout(panel) -> str:
    r = read_out(
        panel, ["chicago", "portland"], ("2021-04-01", "2021-04-15"), estimator="sc", seed=0
    )
    return json.dumps(r.to_dict(), sort_keys=True)


def _store(url: str, frame: pd.DataFrame) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        frame.to_sql("panel", conn, index=False, if_exists="replace")
    engine.dispose()


@pytest.fixture(scope="module")
def csv_frame():
    frame = pd.read_csv(GEOLIFT)
    frame["date"] = pd.to_datetime(frame["date"]).dt.date  # a real DATE column in the database
    return frame


@pytest.fixture(scope="module")
def csv_readout():
    return _readout(load_panel(GEOLIFT, y="Y", geo_col="location"))


def test_duckdb_panel_gives_the_csv_readout(tmp_path, csv_frame, csv_readout):
    pytest.importorskip("duckdb_engine")
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    _store(url, csv_frame)
    frame = read_sql_panel(url, QUERY)
    assert _readout(load_panel(frame, y="Y", geo_col="location")) == csv_readout


@pytest.mark.postgres
def test_postgres_panel_gives_the_csv_readout(pg_server, csv_frame, csv_readout):
    url = pg_server.create_database("panels")
    _store(url, csv_frame)
    frame = read_sql_panel(url, 'SELECT date, location, "Y" FROM panel ORDER BY date, location')
    assert _readout(load_panel(frame, y="Y", geo_col="location")) == csv_readout


def test_url_detection_and_masking():
    assert is_database_url("duckdb:///x.duckdb")
    assert is_database_url("postgresql+psycopg://u:secret@h/db")
    assert not is_database_url("panel.csv")
    assert not is_database_url("C:/data/panel.csv")


def test_bad_database_inputs_name_the_masked_url(tmp_path):
    url = "postgresql+psycopg://user:hunter2@127.0.0.1:1/nowhere"
    with pytest.raises(DataError) as err:
        read_sql_panel(url, QUERY)
    assert "hunter2" not in str(err.value) and "127.0.0.1" in str(err.value)
    with pytest.raises(DataError, match="needs --query"):
        read_sql_panel(url, "  ")
    pytest.importorskip("duckdb_engine")
    with pytest.raises(DataError, match="the query failed"):
        read_sql_panel(f"duckdb:///{tmp_path / 'empty.duckdb'}", "SELECT * FROM missing_table")


def test_cli_readout_from_duckdb_is_byte_identical_to_csv(tmp_path, csv_frame, run_cli):
    pytest.importorskip("duckdb_engine")
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    _store(url, csv_frame)
    common = (
        "--y",
        "Y",
        "--geo-col",
        "location",
        "--treated",
        "chicago,portland",
        "--start",
        "2021-04-01",
        "--end",
        "2021-04-15",
    )
    code, _, err = run_cli(
        "readout", "--data", str(GEOLIFT), "--out", str(tmp_path / "csv.json"), *common
    )
    assert code == 0, err
    code, _, err = run_cli(
        "readout", "--data", url, "--query", QUERY, "--out", str(tmp_path / "db.json"), *common
    )
    assert code == 0, err
    assert (tmp_path / "csv.json").read_bytes() == (tmp_path / "db.json").read_bytes()
    code, _, err = run_cli(
        "readout",
        "--data",
        str(GEOLIFT),
        "--query",
        QUERY,
        "--out",
        str(tmp_path / "x.json"),
        *common,
    )
    assert code == 2 and "--query needs a database URL" in err
