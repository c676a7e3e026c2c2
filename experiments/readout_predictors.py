"""Covariate predictors of the classic synthetic control, read from the panel (``--predictors``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from causal.errors import DataError
from causal.panel import Panel


def parse_predictor(
    panel: Panel, spec: str, pre_period: tuple
) -> tuple[str, pd.Timestamp, pd.Timestamp]:
    """``COL``, ``COL@A:B`` or ``COL@A`` -> (column, first date, last date), checked against the panel."""
    col, _, window = spec.partition("@")
    col = col.strip()
    if col not in panel.data.columns or col in (panel.geo_col, panel.date_col):
        raise DataError(f"{panel.source}: predictor '{spec}': no column '{col}' in the panel")
    if not pd.api.types.is_numeric_dtype(panel.data[col]):
        raise DataError(f"{panel.source}: predictor column '{col}' is not numeric")
    if not window:
        return col, pre_period[0], pre_period[1]
    a, _, b = window.partition(":")
    first = panel.check_date(a.strip(), f"predictor '{spec}' date")
    last = panel.check_date(b.strip(), f"predictor '{spec}' date") if b else first
    if first > last:
        raise DataError(f"predictor '{spec}': its window starts after it ends")
    if last > pre_period[1]:
        raise DataError(
            f"predictor '{spec}': its window ends {last.date()}, after the pre-period ({pre_period[1].date()})"
        )
    return col, first, last


def predictor_matrix(
    panel: Panel,
    specs: Sequence[str],
    treated: Sequence[str],
    control: Sequence[str],
    pre_period: tuple,
) -> np.ndarray:
    """Predictor values (k, 1 + J): the treated geos' average, then every control geo."""
    rows = []
    for spec in specs:
        col, first, last = parse_predictor(panel, spec, pre_period)
        # Not panel.wide(): a covariate may be missing outside the predictor's own window (checked below).
        d = panel.data
        dates = pd.to_datetime(d[panel.date_col])
        part = d[(dates >= first) & (dates <= last)]
        window = part.pivot(index=panel.date_col, columns=panel.geo_col, values=col)
        window = window.reindex(columns=list(treated) + list(control)).astype(float)
        bad = [g for g in list(treated) + list(control) if window[g].isna().any()]
        if bad:
            raise DataError(
                f"{panel.source}: predictor '{spec}': column '{col}' is missing for geo '{bad[0]}' "
                f"within {first.date()}..{last.date()}"
            )
        means = window.mean(axis=0)
        rows.append(np.r_[means[list(treated)].mean(), means[list(control)].to_numpy()])
    return np.asarray(rows, float)
