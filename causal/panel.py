"""Load and validate a long geo panel: one row per (date, geo).

Validation happens here, once, at the edge. Everything downstream receives a
:class:`Panel` whose dates are a regular ``DatetimeIndex``, whose geos are
strings, and whose used columns are finite floats. Nothing is dropped, filled
or clipped silently: the one exception is ``fill_missing="zero"``, which the
user asks for explicitly and which is reported in ``Panel.n_filled``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from causal.errors import DataError, FilledRowsWarning, IncompleteColumnWarning

SPEND_PREFIX = "spend_"

_FREQ_NAMES = {
    "D": "daily",
    "W": "weekly",
    "MS": "monthly",
    "ME": "monthly",
    "YS": "yearly",
    "YE": "yearly",
}


def _fmt_date(d: pd.Timestamp) -> str:
    return pd.Timestamp(d).date().isoformat()


DATE_RULE = (
    "dates are local calendar dates, YYYY-MM-DD (a midnight time is allowed): no time of day and no "
    "UTC offset; convert them to local dates first"
)


def parse_date(value: object, role: str = "date") -> pd.Timestamp:
    """Parse one date by the rule every command shares (:data:`DATE_RULE`).

    A date is a local calendar date: ``YYYY-MM-DD``, optionally with a
    midnight time. A time of day or a UTC offset is refused rather than
    dropped, so ``validate`` and ``readout`` (and the registry) agree on what a
    date is.

    Raises
    ------
    DataError
        Naming ``role`` and the value.
    """
    if isinstance(value, str):
        value = value.strip()
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise DataError(f"{role} '{value}' is not a date (use YYYY-MM-DD)") from exc
    if ts is pd.NaT or pd.isna(ts):
        raise DataError(f"{role} '{value}' is not a date (use YYYY-MM-DD)")
    if ts.tz is not None:
        raise DataError(f"{role} '{value}' has a UTC offset; {DATE_RULE}")
    if ts != ts.normalize():
        raise DataError(f"{role} '{value}' has a time of day; {DATE_RULE}")
    return ts


@dataclass(frozen=True)
class Panel:
    """A validated long geo panel.

    Attributes
    ----------
    data : DataFrame
        Long form, sorted by (date, geo), columns as in the file; dates are
        Timestamps and geos strings.
    y : str
        The outcome column.
    date_col, geo_col : str
        Names of the date and geo columns in ``data``.
    dates : DatetimeIndex
        The regular sequence of dates.
    geos : list of str
        Geo ids in sorted order.
    freq : str
        Pandas frequency alias (``"D"``, ``"W-SUN"``, ``"MS"``, ...).
    source : str
        The file (or ``"<DataFrame>"``) the panel came from, used in messages.
    n_filled : int
        Rows added by ``fill_missing="zero"``.
    incomplete : tuple of str
        Numeric columns with empty cells that no command asked for: kept in ``data``
        (a method may use them where they are present, as Synth's predictors do) but not
        offered as covariates; loading warns about them.
    """

    data: pd.DataFrame
    y: str
    date_col: str
    geo_col: str
    dates: pd.DatetimeIndex
    geos: list[str]
    freq: str
    source: str = "<DataFrame>"
    n_filled: int = 0
    incomplete: tuple = ()
    _wide_cache: dict = field(default_factory=dict, repr=False, compare=False)

    # -- shape ---------------------------------------------------------------
    @property
    def channels(self) -> list[str]:
        """Channel names, from the ``spend_<channel>`` columns."""
        return [c[len(SPEND_PREFIX) :] for c in self.data.columns if c.startswith(SPEND_PREFIX)]

    @property
    def covariates(self) -> list[str]:
        """Numeric columns that are neither the outcome nor a spend, and have no empty cell."""
        skip = {self.y, self.date_col, self.geo_col, *self.incomplete}
        return [
            c
            for c in self.data.columns
            if c not in skip
            and not c.startswith(SPEND_PREFIX)
            and pd.api.types.is_numeric_dtype(self.data[c])
        ]

    @property
    def text_columns(self) -> list[str]:
        """Columns of text (labels such as a region name): kept in ``data``, used by no model."""
        skip = {self.y, self.date_col, self.geo_col}
        return [
            c
            for c in self.data.columns
            if c not in skip and not pd.api.types.is_numeric_dtype(self.data[c])
        ]

    @property
    def period_name(self) -> str:
        """``day``, ``week``, ``month`` or ``year``."""
        return {"D": "day", "W": "week", "M": "month", "Y": "year"}[self.freq[0]]

    def wide(self, column: str | None = None) -> pd.DataFrame:
        """The column as a (dates x geos) frame; the outcome by default."""
        column = column or self.y
        if column not in self._wide_cache:
            self.require_columns([column])
            frame = self.data.pivot(index=self.date_col, columns=self.geo_col, values=column)
            frame = frame.reindex(index=self.dates, columns=self.geos).astype(float)
            frame.index.name, frame.columns.name = "date", "geo"
            self._wide_cache[column] = frame
        return self._wide_cache[column]

    def spend_column(self, channel: str) -> str:
        """The spend column of a channel, checked to exist."""
        col = SPEND_PREFIX + channel
        if col not in self.data.columns:
            have = ", ".join(self.channels) or "none"
            raise DataError(
                f"{self.source}: no spend column '{col}' for channel '{channel}' "
                f"(channels with spend: {have})"
            )
        return col

    # -- checks used by commands --------------------------------------------
    def require_columns(self, columns: Iterable[str]) -> None:
        """Raise :class:`DataError` naming the first column that is absent or unusable."""
        for col in columns:
            if col not in self.data.columns:
                raise DataError(
                    f"{self.source}: no column '{col}' (columns: {', '.join(self.data.columns)})"
                )
            _check_numeric(self.data, col, self.date_col, self.geo_col, self.source)

    def check_geos(self, geos: Sequence[str], role: str = "geo") -> list[str]:
        """Return ``geos`` as strings, raising if one is not in the panel or repeated."""
        out = [str(g).strip() for g in geos]
        known = set(self.geos)
        for g in out:
            if g not in known:
                raise DataError(
                    f"{self.source}: {role} geo '{g}' is not in the panel's '{self.geo_col}' column"
                )
        seen: set[str] = set()
        for g in out:
            if g in seen:
                raise DataError(f"{role} geo '{g}' is given twice")
            seen.add(g)
        return out

    def check_date(self, value: str | pd.Timestamp, role: str = "date") -> pd.Timestamp:
        """Parse a date and check it is one of the panel's dates."""
        ts = parse_date(value, role)
        if ts < self.dates[0] or ts > self.dates[-1]:
            raise DataError(
                f"{role} {_fmt_date(ts)} is outside the data in {self.source} "
                f"({_fmt_date(self.dates[0])} to {_fmt_date(self.dates[-1])})"
            )
        if ts not in self.dates:
            raise DataError(
                f"{role} {_fmt_date(ts)} is not one of the {_FREQ_NAMES.get(self.freq, self.freq)} dates in {self.source}"
            )
        return ts

    def date_position(self, ts: pd.Timestamp) -> int:
        return int(self.dates.get_loc(ts))


def _check_numeric(
    df: pd.DataFrame,
    col: str,
    date_col: str,
    geo_col: str,
    source: str,
    *,
    allow_bool: bool = False,
    allow_missing: bool = False,
) -> bool:
    """Check (and coerce) a numeric column; returns whether it has empty cells (only if ``allow_missing``)."""
    values = df[col]
    if pd.api.types.is_bool_dtype(values) and allow_bool:
        # An indicator covariate (a holiday flag) is a 0/1 number by meaning.
        df[col] = values.astype(float)
        return False
    if pd.api.types.is_bool_dtype(values):
        i = int(values.notna().to_numpy().argmax())
        raise DataError(
            f"{source}: column '{col}' holds true/false values (e.g. {values.iloc[i]!r} at geo "
            f"'{df[geo_col].iloc[i]}', date {_fmt_date(df[date_col].iloc[i])}), not numbers; "
            "write them as numbers if they are"
        )
    if not pd.api.types.is_numeric_dtype(values):
        coerced = pd.to_numeric(values, errors="coerce")
        bad = coerced.isna() & values.notna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                f"{source}: column '{col}' has a non-numeric value {values.iloc[i]!r} "
                f"at geo '{df[geo_col].iloc[i]}', date {_fmt_date(df[date_col].iloc[i])}"
            )
        df[col] = coerced
        values = coerced
    arr = values.to_numpy(dtype=float)
    nonfinite = ~np.isfinite(arr)
    if allow_missing and nonfinite.any() and np.isnan(arr[nonfinite]).all():
        return True
    if nonfinite.any():
        i = int(np.flatnonzero(nonfinite)[0])
        what = "a missing (NaN) value" if np.isnan(arr[i]) else f"a non-finite value {arr[i]}"
        raise DataError(
            f"{source}: column '{col}' has {what} at geo '{df[geo_col].iloc[i]}', "
            f"date {_fmt_date(df[date_col].iloc[i])} ({int(nonfinite.sum())} such rows)"
        )
    return False


def _infer_freq(dates: pd.DatetimeIndex, source: str, date_col: str) -> str:
    if len(dates) < 3:
        raise DataError(
            f"{source}: column '{date_col}' has only {len(dates)} distinct dates; at least 3 are needed"
        )
    diffs = np.diff(dates.to_numpy().astype("datetime64[D]")).astype(np.int64)
    candidates: list[tuple[str, pd.DatetimeIndex]] = []
    if (diffs == 1).all():
        return "D"
    if (diffs == 7).all():
        return "W-" + dates[0].day_name()[:3].upper()
    for alias in ("MS", "ME", "YS", "YE"):
        candidates.append((alias, pd.date_range(dates[0], periods=len(dates), freq=alias)))
    for alias, expected in candidates:
        if expected.equals(dates):
            return alias
    # Name the first break: the most common step is taken as the intended one.
    step = int(pd.Series(diffs).mode().iloc[0])
    i = int(np.flatnonzero(diffs != step)[0])
    raise DataError(
        f"{source}: column '{date_col}' is not at one regular frequency: "
        f"{_fmt_date(dates[i])} is followed by {_fmt_date(dates[i + 1])} "
        f"({int(diffs[i])} days; most steps are {step} days)"
    )


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file, by extension, raising :class:`DataError` on failure."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a file")
    try:
        if suffix in (".csv", ".txt", ".gz"):
            # The header as written: pandas would rename a repeated 'ctv' to a phantom 'ctv.1'.
            header = pd.read_csv(path, nrows=1, header=None, keep_default_na=False, dtype=str)
            _check_unique_columns([str(c) for c in header.iloc[0]] if len(header) else [], path)
            # Only empty cells are missing: "NA" may be a market id, and "n/a" a typo to report.
            return pd.read_csv(path, keep_default_na=False, na_values=[""])
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            _check_unique_columns(list(pq.read_schema(path).names), path)
            return pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty (no header row)") from None
    except (ValueError, OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(
            f"{path}: cannot be read as {suffix[1:]} ({' '.join(str(exc).split())})"
        ) from None
    except Exception as exc:
        # pyarrow raises its own ArrowInvalid (a ValueError) and ArrowException types on damaged files.
        if type(exc).__module__.startswith("pyarrow"):
            raise DataError(
                f"{path}: cannot be read as {suffix[1:]} ({' '.join(str(exc).split())})"
            ) from None
        raise
    raise DataError(f"{path}: unknown file type '{suffix}' (use .csv or .parquet)")


def _check_unique_columns(names: Sequence[str], source: str | Path) -> None:
    """A repeated column name is refused: which of the two is the spend would be a guess."""
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        key = str(name).strip()
        if key in seen:
            raise DataError(
                f"{source}: column '{key}' appears twice (columns {seen[key] + 1} and {i + 1}); "
                "rename or remove one"
            )
        seen[key] = i


def _parse_date_column(df: pd.DataFrame, date_col: str, name: str) -> pd.Series:
    """The date column parsed by :data:`DATE_RULE`, or a :class:`DataError` naming the first bad row."""
    values = df[date_col]

    def row_of(mask: pd.Series | np.ndarray) -> int:
        return int(np.flatnonzero(np.asarray(mask))[0])

    if isinstance(values.dtype, pd.DatetimeTZDtype):
        raise DataError(
            f"{name}: column '{date_col}' holds times with a UTC offset ({values.iloc[0]} in row 2); "
            f"{DATE_RULE}"
        )
    if pd.api.types.is_datetime64_dtype(values):
        parsed = values
    else:
        text = values.astype(str).str.strip()
        offset = text.str.contains(
            r"(?:[Tt ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d*)?)?\s*(?:[Zz]|[+-]\d{2}:?\d{2})|[Zz])$",
            regex=True,
        )
        if offset.any():
            i = row_of(offset)
            raise DataError(
                f"{name}: column '{date_col}' has {values.iloc[i]!r} in row {i + 2}, with a UTC offset; "
                f"{DATE_RULE}"
            )
        try:
            parsed = pd.to_datetime(text, errors="coerce", format="ISO8601")
        except (ValueError, TypeError, OverflowError):
            # Formats pandas cannot vectorise together: name the first value the one rule refuses.
            for j, v in enumerate(values):
                try:
                    parse_date(v, f"{name}: column '{date_col}' row {j + 2}:")
                except DataError as exc:
                    raise DataError(str(exc).replace(": '", " '", 1)) from None
            raise DataError(
                f"{name}: column '{date_col}' mixes date formats; {DATE_RULE}"
            ) from None
        bad = parsed.isna()
        if bad.any():
            i = row_of(bad)
            raise DataError(
                f"{name}: column '{date_col}' has {values.iloc[i]!r} in row {i + 2}, "
                "which is not an ISO date"
            )
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        raise DataError(f"{name}: column '{date_col}' holds times with a UTC offset; {DATE_RULE}")
    timed = (parsed != parsed.dt.normalize()).to_numpy()
    if timed.any():
        i = row_of(timed)
        raise DataError(
            f"{name}: column '{date_col}' has {values.iloc[i]!r} in row {i + 2}, with a time of day; "
            f"{DATE_RULE}"
        )
    return parsed


def _mixed_columns(df: pd.DataFrame, skip: set[str]) -> list[str]:
    """Text columns whose values are numbers except a few cells (a typo, 'n/a', '1,5')."""
    out = []
    for col in df.columns:
        if (
            col in skip
            or pd.api.types.is_numeric_dtype(df[col])
            or pd.api.types.is_bool_dtype(df[col])
        ):
            continue
        values = df[col]
        present = values.notna()
        numeric = pd.to_numeric(values.where(present), errors="coerce").notna()
        if numeric.any() and (present & ~numeric).any():
            out.append(col)
    return out


def load_panel(
    source: str | Path | pd.DataFrame,
    *,
    y: str = "signups",
    date_col: str = "date",
    geo_col: str = "geo",
    fill_missing: str | None = None,
    columns: Sequence[str] = (),
    name: str | None = None,
) -> Panel:
    """Read and validate a long geo panel.

    Parameters
    ----------
    source : path or DataFrame
        A ``.csv`` or ``.parquet`` file, or a long DataFrame.
    y : str, default="signups"
        The outcome column.
    date_col, geo_col : str, default="date", "geo"
        The date and market-id columns.
    fill_missing : {None, "zero"}, default=None
        ``None`` refuses a panel with absent (date, geo) rows; ``"zero"``
        adds them with zeros in every numeric column (for sparse data where a
        market has no row on a day without sales) and warns with the count.
    columns : sequence of str, default=()
        Further columns (covariates) that must exist and be numeric and finite.
        The outcome and every ``spend_*`` column are always checked.
    name : str, optional
        How messages name a DataFrame source (e.g. the masked database URL it was
        read from); a file is named by its path.

    Returns
    -------
    Panel

    Raises
    ------
    DataError
        Naming the file and the column, geo or date at fault.
    """
    if isinstance(source, pd.DataFrame):
        df, name = source.copy(), name or "<DataFrame>"
        _check_unique_columns([str(c) for c in df.columns], name)
    else:
        df, name = read_table(source), str(source)
    if fill_missing not in (None, "zero"):
        raise DataError(f"fill_missing must be None or 'zero', got {fill_missing!r}")

    for col in (date_col, geo_col, y):
        if col not in df.columns:
            hint = (
                " (set --y)"
                if col == y
                else (" (set --date-col)" if col == date_col else " (set --geo-col)")
            )
            raise DataError(
                f"{name}: no column '{col}'{hint}; columns are: {', '.join(map(str, df.columns))}"
            )
    if len(df) == 0:
        raise DataError(f"{name}: the file has no rows")

    missing_geo = df[geo_col].isna()
    if missing_geo.any():
        i = int(np.flatnonzero(missing_geo.to_numpy())[0])
        raise DataError(f"{name}: column '{geo_col}' is empty in row {i + 2}")
    df[geo_col] = df[geo_col].astype(str).str.strip()

    df[date_col] = _parse_date_column(df, date_col, name)

    dup = df.duplicated([date_col, geo_col], keep=False)
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        n = int(df.duplicated([date_col, geo_col]).sum())
        raise DataError(
            f"{name}: duplicate row for geo '{df[geo_col].iloc[i]}', date {_fmt_date(df[date_col].iloc[i])} "
            f"({n} duplicate (date, geo) rows in all)"
        )

    dates = pd.DatetimeIndex(sorted(df[date_col].unique()))
    freq = _infer_freq(dates, name, date_col)
    geos = sorted(df[geo_col].unique())

    n_filled = 0
    expected = len(dates) * len(geos)
    if len(df) != expected:
        full = pd.MultiIndex.from_product([dates, geos], names=[date_col, geo_col])
        have = pd.MultiIndex.from_frame(df[[date_col, geo_col]])
        absent = full.difference(have)
        if fill_missing is None:
            d, g = absent[0]
            raise DataError(
                f"{name}: no row for geo '{g}', date {_fmt_date(d)} ({len(absent)} (date, geo) rows absent "
                f"of {expected}); fill them with zeros explicitly with --fill-missing zero"
            )
        numeric = [
            c
            for c in df.columns
            if c not in (date_col, geo_col) and pd.api.types.is_numeric_dtype(df[c])
        ]
        filler = pd.DataFrame(
            {date_col: absent.get_level_values(0), geo_col: absent.get_level_values(1)}
        )
        for c in numeric:
            filler[c] = 0.0
        df = pd.concat([df, filler], ignore_index=True)
        n_filled = len(absent)
        warnings.warn(
            f"{name}: filled {n_filled} absent (date, geo) rows with zeros (--fill-missing zero)",
            FilledRowsWarning,
            stacklevel=2,
        )

    df = df.sort_values([date_col, geo_col], kind="stable").reset_index(drop=True)
    spend_cols = [c for c in df.columns if str(c).startswith(SPEND_PREFIX)]
    # A covariate with one unparseable cell would otherwise stop being numeric and drop out of the
    # model's controls without a word: it is checked like a used column, and so is a true/false one.
    checked = [y, *spend_cols, *columns]
    extra = _mixed_columns(df, {date_col, geo_col, *checked})
    # Every numeric column is a covariate a command may adjust for: a NaN there is as bad as in spend.
    extra += [
        c
        for c in df.columns
        if c not in (date_col, geo_col, *checked, *extra) and pd.api.types.is_numeric_dtype(df[c])
    ]
    incomplete = []
    for col in [*checked, *extra]:
        if col not in df.columns:
            raise DataError(
                f"{name}: no column '{col}'; columns are: {', '.join(map(str, df.columns))}"
            )
        # The outcome and spend are amounts: true/false there is a wrong column, not a number.
        # A column no command asked for may have empty cells (a predictor observed in some years):
        # it is kept, said aloud, and not offered as a covariate; text in it is still refused.
        if _check_numeric(
            df,
            col,
            date_col,
            geo_col,
            name,
            allow_bool=col != y and not str(col).startswith(SPEND_PREFIX),
            allow_missing=col not in checked,
        ):
            incomplete.append(col)
    if incomplete:
        warnings.warn(
            f"{name}: column(s) {', '.join(map(repr, incomplete))} have empty cells: kept, but not used "
            "as covariates (fill them, or name them explicitly where a method handles gaps)",
            IncompleteColumnWarning,
            stacklevel=2,
        )
    for col in spend_cols:
        neg = df[col].to_numpy() < 0
        if neg.any():
            i = int(np.flatnonzero(neg)[0])
            raise DataError(
                f"{name}: column '{col}' has negative spend {df[col].iloc[i]} at geo '{df[geo_col].iloc[i]}', "
                f"date {_fmt_date(df[date_col].iloc[i])}"
            )
    return Panel(
        data=df,
        y=y,
        date_col=date_col,
        geo_col=geo_col,
        dates=dates,
        geos=list(geos),
        freq=freq,
        source=name,
        n_filled=n_filled,
        incomplete=tuple(incomplete),
    )
