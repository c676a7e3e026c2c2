"""Read a long geo panel from a database with a SQL query (warehouses, not only files).

The query's result goes through exactly the same validation as a CSV
(:func:`causal.panel.load_panel`), so a panel read from DuckDB or PostgreSQL
gives the same readout as the same rows read from a file. Any SQLAlchemy URL
works (``duckdb:///path.duckdb`` with ``duckdb-engine``,
``postgresql+psycopg://user:pw@host/db``); the password never appears in an
error message or in the panel's ``source``.
"""

from __future__ import annotations

import pandas as pd

from causal.errors import DataError, mask_url, raw_at_in_userinfo

#: URL schemes this module treats as a database rather than a file path.
_URL_MARK = "://"


def is_database_url(value: str) -> bool:
    """True if ``value`` looks like a SQLAlchemy URL (``dialect[+driver]://...``)."""
    head, sep, _ = str(value).partition(_URL_MARK)
    return bool(sep) and head.replace("+", "").replace("_", "").isalnum()


def read_sql_panel(url: str, query: str) -> pd.DataFrame:
    """Run ``query`` on the database at ``url`` and return its rows as a DataFrame.

    Parameters
    ----------
    url : str
        SQLAlchemy URL of the database.
    query : str
        A SELECT returning one row per (date, geo) with the panel's columns.

    Raises
    ------
    DataError
        If the URL cannot be parsed, the database cannot be reached, or the query
        fails; the message names the masked URL and never the password.
    """
    import sqlalchemy as sa

    where = mask_url(url)
    if raw_at_in_userinfo(url):
        raise DataError(
            f"{where}: the URL has an unencoded '@' in its user or password: write it as %40"
        )
    if not query or not str(query).strip():
        raise DataError(f"{where}: a database panel needs --query (a SELECT of the panel's rows)")
    try:
        engine = sa.create_engine(url)
    except Exception as exc:  # bad URL, unknown dialect, missing driver
        raise DataError(
            f"{where}: cannot open the database ({type(exc).__name__}: {_scrub(str(exc), url)})"
        ) from None
    try:
        with engine.connect() as conn:
            frame = pd.read_sql_query(sa.text(query), conn)
    except Exception as exc:
        raise DataError(
            f"{where}: the query failed ({type(exc).__name__}: "
            f"{_scrub(str(exc).splitlines()[0] if str(exc) else '', url)})"
        ) from None
    finally:
        engine.dispose()
    # Drivers return dates as datetime.date objects or timestamps; the panel loader
    # parses ISO strings, so hand it the same text a CSV would hold.
    for col in frame.columns:
        if frame[col].dtype == object and len(frame) and hasattr(frame[col].iloc[0], "isoformat"):
            frame[col] = frame[col].map(lambda v: v.isoformat() if v is not None else None)
    return frame


def _scrub(text: str, url: str) -> str:
    """Remove the password of ``url`` from a driver's message."""
    import sqlalchemy as sa

    try:
        password = sa.engine.make_url(url).password
    except Exception:
        return "details withheld: the URL could not be parsed"
    return text.replace(str(password), "***") if password else text
