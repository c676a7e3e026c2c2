"""The experiment registry: lifecycle, the conflict rule, pre-registration, calibration lifts.

Every database test runs on SQLite and, when the machine has PostgreSQL
(``/usr/lib/postgresql/*/bin/initdb``) and psycopg, on a throwaway PostgreSQL
server started for the session (see ``tests/pg_server.py``); otherwise the
PostgreSQL variants are skipped with the reason.
"""

from __future__ import annotations

import multiprocessing as mp
import warnings
from datetime import date

import pytest
import sqlalchemy as sa

from causal.errors import ConfigError, DataError
from experiments import store
from experiments.registry import (
    ConflictError,
    ControlContaminationWarning,
    Registry,
    busy_geos,
    calibration_lifts,
    design_defaults,
    plot_calendar,
)
from experiments.registry import (
    meta as registry_meta,
)


# -- databases ---------------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
    else:
        # One database for the session, emptied before each test: a database per test costs a
        # copy of the template (~1000 files) each, and removing them all at the end takes long.
        server = request.getfixturevalue("pg_server")
        url = server.url("liftlab_test")
        if not getattr(server, "liftlab_test_created", False):
            server.create_database("liftlab_test")
            server.liftlab_test_created = True
        engine = sa.create_engine(url)
        registry_meta.drop_all(engine)
        store.metadata.drop_all(engine)
        engine.dispose()
        yield url


@pytest.fixture
def reg(db_url):
    return Registry(db_url)


def readout_dict(treated=("NA01", "NA02"), test=("2025-10-01", "2025-10-28"), **over):
    """A readout.json as experiments.readout would write it (values made up, keys per INTERFACE.md)."""
    d = {
        "outcome": "signups",
        "estimator": "sc",
        "confidence": 0.9,
        "treated": list(treated),
        "control": ["EM01", "EM02", "AP01"],
        "pre_period": ["2025-01-01", "2025-09-30"],
        "test_period": list(test),
        "observed": 9000.0,
        "counterfactual": 10000.0,
        "incremental": -1000.0,
        "incremental_ci": [-1500.0, -500.0],
        "lift": -0.1,
        "lift_ci": [-0.15, -0.05],
        "p_value": 0.01,
        "channel": "ctv",
        "spend_delta": -20000.0,
        "incremental_per_spend": 0.05,
        "cost_per_incremental": 20.0,
        "seed": 0,
    }
    d.update(over)
    return d


def add_ctv(reg, name="ctv_q4", geos=("NA01", "NA02"), start="2025-10-01", end="2025-10-28", **kw):
    return reg.add(
        name, cells=list(geos), start=start, end=end, channel=kw.pop("channel", "ctv"), **kw
    )


# -- lifecycle -----------------------------------------------------------------------------------
def test_add_stores_a_designed_test_with_its_settings(reg):
    design = {
        "treated": ["NA01", "NA02"],
        "control": ["EM01", "EM02", "AP01"],
        "estimator": "tbr",
        "alpha": 0.05,
        "duration_days": 21,
        "mde": 0.04,
        "outcome": "signups",
    }
    exp = reg.add("ctv_q4", start="2025-10-01", channel="ctv", design=design, note="Q4 go-dark")
    assert exp.status == "designed"
    assert exp.cells == {"A": ("NA01", "NA02")}
    assert exp.control == ("EM01", "EM02", "AP01")
    assert exp.end == date(2025, 10, 21)  # 21 days from the design, inclusive
    assert exp.estimator == "tbr" and exp.confidence == pytest.approx(0.95)
    assert exp.design["mde"] == 0.04 and exp.note == "Q4 go-dark"
    assert [e["action"] for e in exp.events] == ["add"]
    again = Registry(reg.url).get("ctv_q4")  # a fresh handle reads the same record
    assert again.to_dict()["preregistered"] == exp.settings


def test_lifecycle_designed_running_read_out(reg):
    add_ctv(reg)
    assert reg.start("ctv_q4").status == "running"
    rec = reg.record_readout("ctv_q4", readout_dict())
    assert not rec.exploratory and rec.cell == "A" and rec.deviations == ()
    exp = reg.get("ctv_q4")
    assert exp.status == "read_out"
    assert [e["action"] for e in exp.events] == ["add", "start", "readout", "read_out"]
    lifts = calibration_lifts(reg.url)
    assert len(lifts) == 1
    assert lifts[0]["experiment"] == "ctv_q4" and lifts[0]["incremental_ci"] == [-1500.0, -500.0]
    assert lifts[0]["channel"] == "ctv" and lifts[0]["spend_delta"] == -20000.0


@pytest.mark.parametrize("status_path", [[], ["start"]])
def test_cancel_from_designed_or_running(reg, status_path):
    add_ctv(reg)
    for step in status_path:
        getattr(reg, step)("ctv_q4")
    exp = reg.cancel("ctv_q4", reason="budget cut")
    assert exp.status == "cancelled"
    assert exp.events[-1] == {**exp.events[-1], "action": "cancel", "detail": "budget cut"}


def test_bad_transitions_are_refused_with_the_reason(reg):
    add_ctv(reg)
    with pytest.raises(
        ConfigError,
        match="cannot read out experiment 'ctv_q4': it is designed.*registry start ctv_q4",
    ):
        reg.record_readout("ctv_q4", readout_dict())
    reg.start("ctv_q4")
    with pytest.raises(ConfigError, match="cannot start experiment 'ctv_q4': it is running"):
        reg.start("ctv_q4")
    reg.record_readout("ctv_q4", readout_dict())
    with pytest.raises(ConfigError, match="cannot cancel experiment 'ctv_q4': it is read_out"):
        reg.cancel("ctv_q4")
    with pytest.raises(ConfigError, match="it is read_out"):
        reg.start("ctv_q4")
    add_ctv(reg, "later", start="2026-01-01", end="2026-01-20")
    reg.cancel("later")
    for action in (reg.start, reg.cancel):
        with pytest.raises(ConfigError, match="it is cancelled"):
            action("later")
    with pytest.raises(ConfigError, match="it is cancelled"):
        reg.record_readout("later", readout_dict(test=("2026-01-01", "2026-01-20")))


def test_unknown_experiment_and_duplicate_name(reg):
    with pytest.raises(DataError, match="unknown experiment 'nope' \\(the registry is empty\\)"):
        reg.get("nope")
    add_ctv(reg)
    with pytest.raises(DataError, match="unknown experiment 'nope' \\(registered: ctv_q4\\)"):
        reg.start("nope")
    with pytest.raises(ConfigError, match="'ctv_q4' is already registered"):
        add_ctv(reg, start="2027-01-01", end="2027-01-10")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"cells": []}, "no treated geos"),
        ({"cells": ["NA01", "NA01"]}, "treated geo 'NA01' is given twice in cell A"),
        ({"cells": {"A": ["NA01"], "B": ["NA01"]}}, "treated geo 'NA01' is given in cells A and B"),
        ({"cells": {"A": []}}, "cell A has no treated geos"),
        ({"cells": ["NA01", " "]}, "is not a geo id"),
        ({"cells": ["NA01"], "control": ["NA01", "EM01"]}, "geo 'NA01' is both treated"),
        ({"cells": ["NA01"], "control": ["EM01", "EM01"]}, "control geo 'EM01' is given twice"),
        ({"cells": ["NA01"], "control": []}, "control geo list is empty"),
        ({"cells": ["NA01"], "end": "2025-09-01"}, "end 2025-09-01 is before start 2025-10-01"),
        ({"cells": ["NA01"], "end": "2025-13-01"}, "end '2025-13-01' is not a date"),
        (
            {"cells": ["NA01"], "pre_period": ("2025-01-01", "2025-10-05")},
            "pre-period end 2025-10-05 is not before",
        ),
        ({"cells": ["NA01"], "estimator": "magic"}, "estimator 'magic' is unknown"),
        ({"cells": ["NA01"], "confidence": 1.5}, "confidence 1.5 must be in"),
        ({"cells": ["NA01"], "known_geos": ["EM01"]}, "geo 'NA01' is not in the panel"),
        ({"cells": ["NA01"], "end": None}, "give an end date or a design"),
    ],
)
def test_bad_input_is_refused(reg, kwargs, match):
    kwargs = {"start": "2025-10-01", "end": "2025-10-28", **kwargs}
    with pytest.raises((DataError, ConfigError), match=match):
        reg.add("bad", **kwargs)
    assert reg.list() == []


# -- the conflict rule ---------------------------------------------------------------------------
def test_overlapping_geos_and_window_is_refused_naming_the_other_test(reg):
    add_ctv(reg)
    with pytest.raises(
        ConflictError, match="cannot register 'social_q4'.*test 'ctv_q4' \\(designed.*in geos NA02"
    ) as info:
        reg.add(
            "social_q4",
            cells=["NA02", "NA03"],
            start="2025-10-20",
            end="2025-11-10",
            channel="social",
        )
    assert info.value.conflicts[0].other == "ctv_q4" and info.value.conflicts[0].geos == ("NA02",)
    assert [e.name for e in reg.list()] == ["ctv_q4"]
    # Other geos at the same time, and the same geos well after the washout, are fine.
    reg.add("social_other_geos", cells=["NA03"], start="2025-10-20", end="2025-11-10")
    reg.add("ctv_next", cells=["NA01"], start="2025-11-12", end="2025-11-30")


def test_washout_boundaries_exact(reg):
    add_ctv(reg)  # busy 2025-10-01 .. 2025-11-11
    with pytest.raises(ConflictError):
        reg.add("a", cells=["NA01"], start="2025-11-11", end="2025-11-30")
    reg.add("b", cells=["NA01"], start="2025-11-12", end="2025-11-30")
    # A test before ctv_q4 whose own washout reaches its first day is refused; one day earlier is free.
    with pytest.raises(ConflictError):
        reg.add("c", cells=["NA02"], start="2025-09-01", end="2025-09-17")  # busy until 2025-10-01
    reg.add("d", cells=["NA02"], start="2025-09-01", end="2025-09-16")  # busy until 2025-09-30
    # A zero washout makes the windows alone count.
    reg.add("e", cells=["EM01"], start="2025-01-01", end="2025-01-10", washout_days=0)
    reg.add("f", cells=["EM01"], start="2025-01-11", end="2025-01-20", washout_days=0)


def test_cancelled_test_frees_its_geos_and_read_out_test_keeps_them_until_washout_ends(reg):
    add_ctv(reg)
    reg.cancel("ctv_q4")
    reg.add("replacement", cells=["NA01", "NA02"], start="2025-10-05", end="2025-10-25")
    reg.start("replacement")
    reg.record_readout("replacement", readout_dict(test=("2025-10-05", "2025-10-25")))
    assert reg.get("replacement").status == "read_out"
    with pytest.raises(ConflictError, match="replacement.*read_out"):
        reg.add("too_soon", cells=["NA01"], start="2025-11-01", end="2025-11-20")


def test_allow_overlap_is_recorded_and_the_other_owner_must_accept_at_start(reg):
    add_ctv(reg)
    b = reg.add(
        "social_q4",
        cells=["NA02", "NA03"],
        start="2025-10-10",
        end="2025-10-31",
        allow_overlap=True,
        reason="social barely reaches CTV audiences",
    )
    assert b.overlaps[0]["other"] == "ctv_q4" and b.overlaps[0]["geos"] == ["NA02"]
    assert b.overlaps[0]["reason"] == "social barely reaches CTV audiences"
    assert "allow_overlap" in [e["action"] for e in b.events]
    # social_q4 accepted the overlap; ctv_q4's owner has not, so starting ctv_q4 is refused...
    with pytest.raises(ConflictError, match="cannot start 'ctv_q4'.*test 'social_q4'"):
        reg.start("ctv_q4")
    assert reg.get("ctv_q4").status == "designed"
    # ...until accepted explicitly; social_q4 starts without a new allowance.
    assert reg.start("ctv_q4", allow_overlap=True, reason="agreed").status == "running"
    assert reg.get("ctv_q4").overlaps[0]["at"] == "start"
    assert reg.start("social_q4").status == "running"


def test_busy_geos_and_conflicts(reg):
    add_ctv(reg)
    reg.add("prog", cells={"A": ["EM01"], "B": ["EM02"]}, start="2025-12-01", end="2025-12-20")
    assert busy_geos(reg.url, "2025-11-01", "2025-11-10") == {"NA01", "NA02"}
    assert busy_geos(reg.url, "2025-11-01", "2025-11-20") == {
        "NA01",
        "NA02",
        "EM01",
        "EM02",
    }  # own washout
    assert busy_geos(reg.url, "2025-11-01", "2025-11-10", washout_days=0) == {"NA01", "NA02"}
    assert busy_geos(reg.url, "2026-03-01", "2026-03-10") == set()
    found = reg.conflicts(["NA02", "EM02"], "2025-10-15", "2025-12-05")
    assert [(c.other, c.geos) for c in found] == [("ctv_q4", ("NA02",)), ("prog", ("EM02",))]
    with pytest.raises(DataError, match="end 2025-01-01 is before start"):
        busy_geos(reg.url, "2025-02-01", "2025-01-01")


def test_control_geos_treated_elsewhere_warn(reg):
    add_ctv(reg)
    with pytest.warns(
        ControlContaminationWarning,
        match="control geos are treated by other tests during this test \\(NA01 by test 'ctv_q4'\\)",
    ):
        reg.add(
            "em", cells=["EM01"], control=["NA01", "AP01"], start="2025-10-05", end="2025-10-20"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error", ControlContaminationWarning)
        reg.add("em2", cells=["EM02"], control=["AP01"], start="2025-10-05", end="2025-10-20")


# -- pre-registration ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "over, deviation",
    [
        ({"estimator": "tbr"}, "estimator tbr instead of sc"),
        ({"confidence": 0.8}, "confidence 0.8 instead of 0.9"),
        ({"seed": 3}, "seed 3 instead of 0"),
        (
            {"test_period": ["2025-10-01", "2025-10-21"]},
            "test period 2025-10-01 to 2025-10-21 instead of",
        ),
        (
            {"pre_period": ["2025-06-01", "2025-09-30"]},
            "pre-period 2025-06-01 to 2025-09-30 instead of 2025-01-01",
        ),
        ({"treated": ["NA01"]}, "treated geos NA01 are not one cell"),
        ({"control": ["EM01"]}, "control geos differ"),
        ({"outcome": "revenue"}, "outcome revenue instead of signups"),
    ],
)
def test_readout_with_other_settings_is_exploratory(reg, over, deviation):
    add_ctv(reg, pre_period=("2025-01-01", None), control=["EM01", "EM02", "AP01"])
    reg.start("ctv_q4")
    rec = reg.record_readout("ctv_q4", readout_dict(**over))
    assert rec.exploratory and rec.label == "EXPLORATORY"
    assert any(deviation in d for d in rec.deviations), rec.deviations
    exp = reg.get("ctv_q4")
    assert exp.status == "running"  # an exploratory readout does not close the test
    assert "EXPLORATORY" in exp.summary() and deviation.split(" instead")[0] in exp.summary()
    assert calibration_lifts(reg.url) == []
    # The pre-registered readout still closes it, and only it feeds calibration.
    confirmed = reg.record_readout("ctv_q4", readout_dict())
    assert not confirmed.exploratory and reg.get("ctv_q4").status == "read_out"
    assert [d["readout_id"] for d in calibration_lifts(reg.url)] == [confirmed.id]


def test_second_readout_of_a_cell_is_exploratory(reg):
    add_ctv(reg)
    reg.start("ctv_q4")
    first = reg.record_readout("ctv_q4", readout_dict())
    second = reg.record_readout("ctv_q4", readout_dict(incremental=-2000.0))
    assert not first.exploratory and second.exploratory
    assert "repeat of pre-registered readout" in second.deviations[0]
    lifts = calibration_lifts(reg.url)
    assert len(lifts) == 1 and lifts[0]["incremental"] == -1000.0


def test_readout_of_geos_outside_the_test_or_another_channel_is_refused(reg):
    add_ctv(reg)
    reg.start("ctv_q4")
    with pytest.raises(DataError, match="treats geo 'EM09', which is not in the test"):
        reg.record_readout("ctv_q4", readout_dict(treated=["NA01", "EM09"]))
    with pytest.raises(DataError, match="channel 'social', but the test moves 'ctv'"):
        reg.record_readout("ctv_q4", readout_dict(channel="social"))
    with pytest.raises(DataError, match="no 'incremental_ci' key"):
        bad = readout_dict()
        del bad["incremental_ci"]
        reg.record_readout("ctv_q4", bad)
    rec = reg.record_readout("ctv_q4", readout_dict(control=["NA01", "EM01"]))
    assert rec.exploratory and rec.deviations == (
        "control includes treated geo(s) of the test: NA01",
    )
    assert reg.get("ctv_q4").status == "running"


def test_multi_cell_test_is_read_out_when_every_cell_is(reg):
    reg.add(
        "ctv_cells",
        cells={"low": ["NA01"], "high": ["EM01", "EM02"]},
        start="2025-10-01",
        end="2025-10-28",
        channel="ctv",
    )
    reg.start("ctv_cells")
    reg.record_readout("ctv_cells", readout_dict(treated=["NA01"], control=["AP01"]))
    assert reg.get("ctv_cells").status == "running"
    assert calibration_lifts(reg.url) == []
    reg.record_readout(
        "ctv_cells", readout_dict(treated=["EM02", "EM01"], control=["AP01"], channel=None)
    )
    assert reg.get("ctv_cells").status == "read_out"
    lifts = calibration_lifts(reg.url)
    assert [(d["cell"], d["treated"]) for d in lifts] == [
        ("low", ["NA01"]),
        ("high", ["EM02", "EM01"]),
    ]
    assert lifts[1]["channel"] == "ctv"  # the test's channel fills a readout's null


def test_calibration_lifts_skip_cancelled_and_unread_tests(reg):
    add_ctv(reg)
    reg.add("other", cells=["EM01"], start="2025-10-01", end="2025-10-28", channel="social")
    reg.start("other")
    reg.record_readout("other", readout_dict(treated=["EM01"], control=["AP01"], channel="social"))
    reg.cancel("ctv_q4")
    assert [d["experiment"] for d in calibration_lifts(reg.url)] == ["other"]


def test_reading_a_missing_sqlite_registry_is_an_error(tmp_path):
    with pytest.raises(DataError, match="no registry database at .*missing.db"):
        calibration_lifts(str(tmp_path / "missing.db"))
    with pytest.raises(DataError, match="no registry database"):
        busy_geos(tmp_path / "missing.db", "2025-01-01", "2025-01-10")
    assert not (tmp_path / "missing.db").exists()


def test_command_line_default_is_liftlab_db_or_the_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LIFTLAB_DB", raising=False)
    # The default is the command line's, never the library's: a registry needs a database named.
    with pytest.raises(ConfigError, match="no database given"):
        Registry(None)
    assert store.resolve_url(store.command_line_default()) == f"sqlite:///{tmp_path / 'liftlab.db'}"
    monkeypatch.setenv("LIFTLAB_DB", str(tmp_path / "x.db"))
    assert store.resolve_url(store.command_line_default()) == f"sqlite:///{tmp_path / 'x.db'}"
    assert store.resolve_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    with pytest.raises(ConfigError, match="not usable"):
        store.open_engine("nosuchdialect://x")


def test_design_defaults_read_cells_lists():
    got = design_defaults(
        {"cells": [{"name": "low", "treated": ["A1"]}, {"treated": ["B1", "B2"]}], "alpha": 0.1}
    )
    assert got["cells"] == {"low": ["A1"], "B": ["B1", "B2"]} and got[
        "confidence"
    ] == pytest.approx(0.9)
    with pytest.raises(DataError, match="design cell 1 has no 'treated'"):
        design_defaults({"cells": [{"name": "x"}]})


def test_calendar_table_and_chart(reg):
    add_ctv(reg)
    reg.add("prog", cells={"A": ["EM01"], "B": ["EM02"]}, start="2025-12-01", end="2025-12-20")
    reg.add("dropped", cells=["AP01"], start="2026-01-01", end="2026-01-20")
    reg.cancel("dropped")
    cal = reg.calendar()
    assert list(cal["experiment"]) == ["ctv_q4", "ctv_q4", "prog", "prog"]
    assert set(reg.calendar(include_cancelled=True)["experiment"]) == {"ctv_q4", "prog", "dropped"}
    assert list(reg.calendar(start="2025-12-10")["experiment"].unique()) == ["prog"]
    fig, ax = plot_calendar(reg.calendar(include_cancelled=True))
    assert [t.get_text() for t in ax.get_yticklabels()] == ["AP01", "EM01", "EM02", "NA01", "NA02"]
    assert len(ax.collections) == 5 + 4  # a bar per (test, geo), a washout per live (test, geo)
    import matplotlib.pyplot as plt

    plt.close(fig)
    with pytest.raises(DataError, match="calendar is empty"):
        plot_calendar(reg.calendar(start="2030-01-01"))


# -- concurrent writers ----------------------------------------------------------------------------
def _register_worker(url: str, name: str, geos: list[str], barrier, queue) -> None:
    import time

    from experiments.registry import ConflictError as Conflict
    from experiments.registry import Registry as Reg
    from experiments.registry import service

    # Widen the gap between the conflict check and the insert (patched in this worker process
    # only): without the writer lock both processes would pass the check.
    check = service.find_conflicts

    def slow_check(*args, **kwargs):
        found = check(*args, **kwargs)
        time.sleep(0.3)
        return found

    service.find_conflicts = slow_check

    reg = Reg(url)
    barrier.wait(timeout=60)
    try:
        reg.add(name, cells=geos, start="2025-10-01", end="2025-10-28")
        queue.put((name, "ok"))
    except Conflict as exc:
        queue.put((name, f"conflict: {exc}"))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the test
        queue.put((name, f"error: {type(exc).__name__}: {exc}"))


def test_two_processes_registering_overlapping_tests_never_both_succeed(db_url):
    Registry(db_url).close()  # create the schema first, as a user's first command would
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    for round_ in range(2):
        barrier, queue = ctx.Barrier(2), ctx.Queue()
        names = [f"r{round_}_a", f"r{round_}_b"]
        geos = [
            [f"G{round_}", f"X{round_}a"],
            [f"G{round_}", f"X{round_}b"],
        ]  # overlap in G<round> only
        procs = [
            ctx.Process(target=_register_worker, args=(db_url, n, g, barrier, queue))
            for n, g in zip(names, geos)
        ]
        for p in procs:
            p.start()
        results = dict(queue.get(timeout=120) for _ in procs)
        for p in procs:
            p.join(timeout=60)
        outcomes = sorted(v.split(":")[0] for v in results.values())
        assert outcomes == ["conflict", "ok"], results
        winner = next(n for n, v in results.items() if v == "ok")
        loser = next(n for n in names if n != winner)
        assert f"test '{winner}'" in results[loser]
    live = Registry(db_url).list(status="designed")
    assert len(live) == 2  # one per round: never two overlapping live tests
    for a in live:
        for b in live:
            if a.name != b.name:
                assert not set(a.treated) & set(b.treated)


# -- the readout through the registry, on a simulated world ---------------------------------------
def test_registered_readout_on_a_simulated_world_flows_to_calibration(tmp_path):
    pytest.importorskip("experiments.readout")
    from causal.panel import load_panel
    from causal.world import Experiment as WorldExperiment
    from causal.world import World

    test = ("2024-06-01", "2024-06-28")
    frame, truth = World(12, 200, seed=11).simulate(
        [WorldExperiment("ctv", ("NA01", "EM01"), *test, 0.0)]
    )
    panel = load_panel(frame)
    url = f"sqlite:///{tmp_path / 'reg.db'}"
    reg = Registry(url)
    reg.add("ctv_go_dark", cells=["NA01", "EM01"], start=test[0], end=test[1], channel="ctv")
    # Another test treats EM02 during the window: its geo is a contaminated donor and is left out.
    reg.add("social_em", cells=["EM02"], start="2024-06-10", end="2024-06-20", channel="social")
    reg.start("ctv_go_dark")
    with pytest.raises(ConfigError, match="has no cell 'B'"):
        reg.run_readout("ctv_go_dark", panel, cell="B")
    (rec,) = reg.run_readout("ctv_go_dark", panel)
    assert not rec.exploratory and rec.cell == "A"
    assert set(rec.result["control"]) == set(panel.geos) - {"NA01", "EM01", "EM02"}
    assert "1 geos excluded" in rec.settings["control_rule"]
    assert reg.get("ctv_go_dark").status == "read_out"
    (lift,) = calibration_lifts(url)
    true = truth["experiments"][0]
    assert lift["experiment"] == "ctv_go_dark" and lift["channel"] == "ctv"
    assert lift["incremental"] == pytest.approx(rec.result["incremental"])
    assert lift["incremental_ci"] == pytest.approx(rec.result["incremental_ci"])
    # The spend change is estimated by the readout; it is close to the simulated one.
    assert lift["spend_delta"] == pytest.approx(true["spend_delta"], rel=0.25)
    lo, hi = lift["incremental_ci"]
    assert lo < hi and lift["confidence"] == pytest.approx(0.9)
    # Another estimator on the same test is exploratory and does not reach calibration.
    (expl,) = reg.run_readout("ctv_go_dark", panel, estimator="tbr")
    assert expl.exploratory and "estimator tbr instead of sc" in expl.deviations
    assert [d["readout_id"] for d in calibration_lifts(url)] == [rec.id]
    # The same readout with its Readout object (the demo's reports need it): the stored record is
    # that object's dict (a repeat, so exploratory).
    ((again, readout),) = reg.run_readout_results("ctv_go_dark", panel)
    assert again.exploratory and again.id not in (rec.id, expl.id)
    assert readout.to_dict()["incremental"] == pytest.approx(rec.result["incremental"])
    assert again.result["incremental_ci"] == pytest.approx(list(readout.incremental_ci))


def test_unreachable_databases_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="folder .*no_such_folder does not exist"):
        Registry(tmp_path / "no_such_folder" / "reg.db")
    pytest.importorskip("psycopg")
    # Port 1 on localhost refuses at once: a one-line DataError naming the database, not a traceback.
    with pytest.raises(DataError, match="database postgresql\\+psycopg://nobody@127.0.0.1:1/x"):
        Registry("postgresql+psycopg://nobody@127.0.0.1:1/x")
