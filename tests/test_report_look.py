"""The shared report look: warnings panel, currency, units, readable numbers, ``--currency``."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import reference_file

from allocation.cli.report import (
    Report,
    check_currency,
    currency_context,
    fmt_auto,
    fmt_money,
    fmt_per_spend,
    money_label,
    per_period,
    per_spend_label,
    period_name,
)


def _render(**kwargs) -> str:
    rep = Report("T", headline=[("spend", "1")], **kwargs)
    rep.section("Money").table(
        pd.DataFrame({"line": ["a"], money_label("spend"): [fmt_money(1234.5)]})
    )
    return rep.render()


def test_warnings_panel_comes_first_and_is_escaped():
    rep = Report("T", headline=[("lift", "5%")], warnings=["untested channel <b>tv</b>"])
    rep.warn("p-value and interval disagree").warn("p-value and interval disagree")  # shown once
    rep.section("Body", "text")
    html = rep.render()
    body = html[html.index("<main>") :]
    panel = body.index('class="warnings"')
    assert panel < body.index('class="headline"') < body.index("<section>")
    assert "untested channel &lt;b&gt;tv&lt;/b&gt;" in html and "<b>tv</b>" not in html
    assert html.count("p-value and interval disagree") == 1
    assert "(2)" in body[panel : body.index('class="headline"')]


def test_no_panel_without_warnings():
    html = _render()
    assert 'class="warnings"' not in html and "Read before trusting" not in html


def test_currency_in_money_cells_and_header():
    html = _render()  # no currency: plain numbers under a labelled header
    assert "spend (currency units)" in html and ">1,234.50<" in html and "amounts in" not in html
    with currency_context("eur"):
        html = _render(currency="EUR")
    assert (
        "EUR 1,234.50" in html and "spend (currency units)" not in html and "amounts in EUR" in html
    )
    assert "<td class='n'>EUR 1,234.50</td>" in html  # a money cell aligns right like a number


def test_fmt_money_forms():
    assert fmt_money(1234.5) == "1,234.50"  # existing callers unchanged
    assert fmt_money(1234.5, 0, unit=True) == "1,234 currency units"
    assert fmt_money(-1234.5, 0, "USD") == "-USD 1,234"
    assert fmt_money(1234.5, 2, "€") == "€1,234.50"
    assert fmt_money(None, currency="EUR") == "—"
    with currency_context("£"):
        assert fmt_money(10) == "£10.00" and money_label("cost") == "cost"
    assert fmt_money(10) == "10.00"  # the context ends with its block


@pytest.mark.parametrize(
    "good, shown", [("eur", "EUR"), (" USD ", "USD"), ("€", "€"), ("R$", "R$"), ("$", "$")]
)
def test_check_currency_accepts(good, shown):
    assert check_currency(good) == shown


@pytest.mark.parametrize("bad", ["EURO", "12", "", "E U", "<b>", "€€€€", "ab"])
def test_check_currency_refuses(bad):
    with pytest.raises(ValueError, match="currency"):
        check_currency(bad)


def test_units_helpers():
    assert per_spend_label("signups") == "signups per 1,000 spent"
    assert per_spend_label("signups", currency="EUR") == "signups per EUR 1,000 spent"
    assert fmt_per_spend(0.0123, "signups") == "12.3 signups per 1,000 spent"
    assert [period_name(f) for f in ("D", "W-SUN", "MS", "W")] == ["day", "week", "month", "week"]
    assert per_period("W-SAT") == "per week"
    with pytest.raises(ValueError, match="'X'"):
        period_name("X")


@pytest.mark.parametrize(
    "x, text",
    [
        (90720.4, "90,720"),
        (3.14159, "3.14"),
        (0.0012345, "0.00123"),
        (-2.5e6, "-2,500,000"),
        (0.0, "0"),
        (None, "—"),
    ],
)
def test_fmt_auto_never_uses_e_notation(x, text):
    assert fmt_auto(x) == text


GEOLIFT = (
    "--y",
    "Y",
    "--geo-col",
    "location",
    "--treated",
    "2",
    "--durations",
    "10",
    "--effect-sizes",
    "0,0.1,0.3",
    "--windows",
    "3",
    "--method",
    "matched",
)


def test_design_report_in_currency_with_warnings(run_cli, tmp_path):
    data = reference_file("geolift", "GeoLift_Test.csv")
    out, rep = tmp_path / "d.json", tmp_path / "d.html"
    code, _, stderr = run_cli(
        "design",
        "--data",
        str(data),
        "--out",
        str(out),
        "--report",
        str(rep),
        *GEOLIFT,
        "--cost-per-incremental",
        "5",
        "--currency",
        "eur",
    )
    assert code == 0, stderr
    d = json.loads(out.read_text())
    html = rep.read_text()
    assert f"EUR {d['investment']:,.0f}" in html and "amounts in EUR" in html
    # Three windows are far fewer than ten independent tests: the panel says so, before the tiles.
    assert "Read before trusting" in html and html.index('class="warnings"') < html.index(
        'class="headline"'
    )
    assert f"about {d['n_effective_windows']:.1f} independent tests" in html


@pytest.mark.parametrize("bad", ["EURO", "1$", "<b>"])
def test_bad_currency_exits_2_with_one_line(run_cli, tmp_path, bad):
    data = reference_file("geolift", "GeoLift_Test.csv")
    out = tmp_path / "d.json"
    code, _, stderr = run_cli(
        "design", "--data", str(data), "--out", str(out), *GEOLIFT, "--currency", bad
    )
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--currency" in lines[0]
    assert not out.exists()


def test_demo_refuses_a_bad_currency_before_running(run_cli, tmp_path):
    code, _, stderr = run_cli("demo", "--out", str(tmp_path / "demo"), "--currency", "EURO")
    assert code == 2 and stderr.strip().splitlines() == [stderr.strip()] and "--currency" in stderr
    assert not (tmp_path / "demo").exists()


def _fake_design(
    fpr: float, null_rate: float | None, n_eff: float, mde: float | None = 0.05, factor: float = 1.0
):
    from types import SimpleNamespace as NS

    power = NS(
        false_positive_rate=fpr,
        n_windows=30,
        n_effective=n_eff,
        mde_power=0.8,
        power_se=0.05,
        lifts=[0.0, 0.1],
        selection_factor=factor,
        rate_se=lambda p: (max(p, 0.01) * (1 - p) / n_eff) ** 0.5,
    )
    cell = NS(
        power=power,
        null_rate=null_rate,
        treated=("a", "b"),
        mde=mde,
        within_budget=True,
        investment=None,
    )
    return NS(cells=[cell], alpha=0.1, power_target=0.8, held_out=True, settings={"budget": None})


def test_design_warnings_follow_the_figures():
    from allocation.cli.design_report import design_warnings

    assert design_warnings(_fake_design(0.08, 0.09, 40)) == []
    (w,) = design_warnings(_fake_design(0.5, 0.09, 40))
    assert (
        "false positive rate 0.50 ± 0.08 on its held-out windows (0.09 on the no-effect windows)"
        in w
    )
    assert "possibly chance" not in w  # 0.5 is far above alpha 0.1 on 40 tests
    (w,) = design_warnings(_fake_design(0.15, None, 40))
    assert "possibly chance" in w  # 0.15 ± 0.06 is within two standard errors of 0.1
    texts = design_warnings(_fake_design(0.05, None, 4, mde=None))
    assert any("does not reach 80% power" in t for t in texts)
    assert any("about 4.0 independent tests" in t for t in texts)
    (w,) = design_warnings(_fake_design(0.08, 0.09, 40, factor=1.48))
    assert "widens its interval x1.48" in w


def test_readout_warns_when_a_priced_lift_is_not_distinguished_from_zero():
    from types import SimpleNamespace

    from allocation.cli.readout_report import readout_warnings

    base = dict(
        confidence=0.9,
        tests=[],
        channel="brand_search",
        spend={"moved": True},
        notes=[],
        outcome="signups",
        cost_per_incremental=88.78,
    )
    unclear = SimpleNamespace(**base, incremental_ci=(-1764.0, 2770.0), p_value=0.748)
    clear = SimpleNamespace(**base, incremental_ci=(400.0, 2770.0), p_value=0.01)
    assert any("includes zero" in w for w in readout_warnings(unclear))
    assert not any("includes zero" in w for w in readout_warnings(clear))
