"""Published analyses against liftlab's readout: the parity table of docs/readout.md.

Every liftlab figure is produced by running the exact ``liftlab readout`` command shown in the table
(through the CLI's own entry point, in this process), reading the readout.json it writes. The R
CausalImpact fixtures are series, not geo panels: ``benchmarks/bench_bsts.py`` compares them.

Usage::

    PYTHONPATH=$PWD python benchmarks/parity_readout.py
"""

from __future__ import annotations

import json
import shlex
import tempfile
from pathlib import Path

from click.testing import CliRunner

from allocation.cli.main import cli
from causal.trimmed_match import TrimmedMatch

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
GEOLIFT = "tests/data/geolift/GeoLift_Test.csv"
MULTI = "tests/data/geolift/GeoLift_Test_MultiCell.csv"
SMOKING = "tests/data/synth/smoking.csv"
TM = "tests/data/trimmed_match"
PROP99 = "--y cigsale --geo-col state --treated California --start 1989-01-01 --end 2000-01-01"
ABADIE = (
    "lnincome@1980:1988,retprice@1980:1988,age15to24@1980:1988,beer@1984:1988,"
    "cigsale@1975,cigsale@1980,cigsale@1988"
)


def run(command: str) -> dict:
    """Run ``liftlab <command> --out FILE`` and return readout.json."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        res = CliRunner().invoke(
            cli, shlex.split(command) + ["--out", str(out)], catch_exceptions=False
        )
        if res.exit_code != 0:
            raise RuntimeError(f"liftlab {command}: {res.output}")
        return json.loads(out.read_text())


def rows() -> list[tuple[str, str, str, str, str]]:
    """(analysis, figure, published, liftlab, command) rows."""
    out = []
    geo = f"readout --data {GEOLIFT} --y Y --geo-col location --treated chicago,portland --start 2021-04-01 --end 2021-04-15"
    d = run(geo + " --inference geolift --no-placebos")
    w = d["weights"]
    out += [
        (
            "GeoLift walkthrough (single cell)",
            "ATT (sc)",
            "155.556",
            f"{d['att']:.3f}",
            geo + " --inference geolift",
        ),
        ("", "incremental; lift", "4667; 5.4%", f"{d['incremental']:.0f}; {d['lift']:.2%}", ""),
        (
            "",
            "weights cincinnati / miami / baton rouge",
            "0.2272 / 0.2028 / 0.1335",
            f"{w['cincinnati']:.4f} / {w['miami']:.4f} / {w['baton rouge']:.4f}",
            "",
        ),
        ("", "p-value (GeoLift's test)", "about 0.01", f"{d['p_value']:.3f}", ""),
    ]
    d = run(geo + " --estimator asc --no-placebos")
    out.append(
        (
            "",
            "asc: ATT; incremental; lift",
            "156.805; 4704; 5.5%",
            f"{d['att']:.3f}; {d['incremental']:.0f}; {d['lift']:.2%}",
            geo + " --estimator asc",
        )
    )
    cells = "chicago_cincinnati=chicago,cincinnati;honolulu_indianapolis=honolulu,indianapolis"
    cmd = (
        f'readout --data {MULTI} --y Y --geo-col location --cells "{cells}" --start 2021-04-01 '
        "--end 2021-04-15 --estimator asc"
    )
    d = run(cmd + " --no-placebos")
    c1, c2 = d["cells"]["chicago_cincinnati"], d["cells"]["honolulu_indianapolis"]
    out.append(
        (
            "GeoLift walkthrough (multi-cell, ridge)",
            "lift; incremental per cell",
            "22.8%, 20215 / 7.1%, 6493",
            f"{c1['lift']:.1%}, {c1['incremental']:.0f} / {c2['lift']:.1%}, {c2['incremental']:.0f}",
            cmd,
        )
    )
    for est, pub in (("sdid", -15.6), ("sc-classic", -19.6), ("did", -27.3)):
        cmd = f"readout --data {SMOKING} {PROP99} --estimator {est}"
        d = run(cmd + " --no-placebos")
        out.append(
            (
                "synthdid paper, Table 1 (Prop 99)" if est == "sdid" else "",
                f"{est}: average effect 1989-2000 (packs)",
                f"{pub}",
                f"{d['att']:.2f}",
                cmd,
            )
        )
    cmd = f"readout --data {SMOKING} {PROP99} --estimator sc-classic --predictors {ABADIE}"
    d = run(cmd + " --no-placebos")
    w = {k: v for k, v in sorted(d["weights"].items(), key=lambda kv: -kv[1]) if v > 0.01}
    out += [
        (
            "Abadie, Diamond & Hainmueller 2010 (Prop 99)",
            "weights UT / NV / MT / CO / CT",
            "0.334 / 0.234 / 0.199 / 0.164 / 0.069",
            " / ".join(
                f"{w[s]:.3f}" for s in ("Utah", "Nevada", "Montana", "Colorado", "Connecticut")
            ),
            cmd,
        ),
        ("", "gap in 2000 (packs)", "about -26", f"{d['series']['incremental'][-1]:.1f}", ""),
    ]
    tm = TrimmedMatch().fit([1, 10, 3, 8, 5], [1, 5, 2, 5, 3])
    lo, hi = tm.conf_int(0.8)
    out.append(
        (
            "trimmed_match README (5 pairs)",
            "iROAS, 80% interval",
            "1.60 (1.52, 1.66)",
            f"{tm.estimate_:.2f} ({lo:.2f}, {hi:.2f})",
            "TrimmedMatch().fit(dR, dS).conf_int(0.8)",
        )
    )
    for rate, pub in (
        (0.0, "1.692, se 0.138, (1.250, 1.905)"),
        (None, "1.571, se 0.041, rate 0.25, (-29.374, 1.619)"),
    ):
        tm = TrimmedMatch(trim_rate=rate).fit([1.0, 10.0, 3.0, 8.0], [1.0, 5.0, 2.0, 5.0])
        lo, hi = tm.conf_int(0.9)
        ours = f"{tm.estimate_:.3f}, se {tm.std_error_:.3f}" + (
            f", rate {tm.trim_rate_:.2f}" if rate is None else ""
        )
        out.append(
            (
                "trimmed_match unit tests (4 pairs, 90%)" if rate == 0.0 else "",
                "no trim" if rate == 0.0 else "trim rate by the paper's rule",
                pub,
                f"{ours}, ({lo:.3f}, {hi:.3f})",
                f"TrimmedMatch(trim_rate={rate}).fit(dR, dS)",
            )
        )
    cmd = (
        f"readout --data {TM}/example_weekly.csv --y response --geo-col geo --pairs {TM}/pairs.csv "
        "--start 2020-11-04 --end 2020-11-25 --estimator trimmed_match --channel search --confidence 0.8"
    )
    d = run(cmd)
    out.append(
        (
            "trimmed_match example data (57 pairs)",
            "iROAS; 80% interval of incremental",
            "no published figure (the colab prints it)",
            f"{d['incremental_per_spend']:.4f}; {d['incremental_ci'][0]:,.0f} to {d['incremental_ci'][1]:,.0f}",
            cmd,
        )
    )
    return out


def main() -> None:
    print("| analysis | figure | published | liftlab | command |")
    print("| --- | --- | --- | --- | --- |")
    for analysis, figure, pub, ours, cmd in rows():
        print(
            f"| {analysis} | {figure} | {pub} | {ours} | {'`liftlab ' + cmd + '`' if cmd.startswith('readout') else ('`' + cmd + '`' if cmd else '')} |"
        )


if __name__ == "__main__":
    main()
