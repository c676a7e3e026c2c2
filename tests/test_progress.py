"""Progress bars: drawn on a terminal, silent when piped or in CI (issue 18)."""

from __future__ import annotations

import io

from causal import progress as prog


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_silent_when_piped(monkeypatch, capsys):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("LIFTLAB_PROGRESS", raising=False)
    assert list(prog.progress(range(5), desc="search")) == [0, 1, 2, 3, 4]
    out, err = capsys.readouterr()
    assert out == "" and err == ""


def test_drawn_on_a_terminal_and_hidden_by_ci(monkeypatch):
    term = _Terminal()
    monkeypatch.setattr("sys.stderr", term)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("LIFTLAB_PROGRESS", raising=False)
    assert list(prog.progress(range(3), desc="design search", total=3)) == [0, 1, 2]
    assert "design search" in term.getvalue()
    for env in ("CI", "LIFTLAB_PROGRESS"):
        monkeypatch.setenv(env, "1" if env == "CI" else "0")
        quiet = _Terminal()
        monkeypatch.setattr("sys.stderr", quiet)
        assert list(prog.progress(range(3), desc="x")) == [0, 1, 2]
        assert quiet.getvalue() == ""
        monkeypatch.delenv(env)


def test_demo_step_headers_follow_the_same_rule(monkeypatch, capsys):
    # The demo's "[n/9] ..." headers: on a terminal only, like the bars (quiet when piped or in CI).
    from allocation.cli.commands import demo

    monkeypatch.setattr(demo, "progress_enabled", lambda: False)
    demo._step(1, 9, "simulating")
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(demo, "progress_enabled", lambda: True)
    demo._step(2, 9, "designing")
    assert capsys.readouterr().err == "[2/9] designing\n"


def test_calibrate_draws_a_bar_on_a_terminal_only(monkeypatch, capsys, small_world):
    from allocation.workflows import calibrate_curves
    from causal.panel import load_panel

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("LIFTLAB_PROGRESS", raising=False)
    panel = load_panel(small_world[1])
    calibrate_curves(panel, model="regression", forms=("hill",))
    assert capsys.readouterr().err == ""  # pytest's stderr is not a terminal
    term = _Terminal()
    monkeypatch.setattr("sys.stderr", term)
    calibrate_curves(panel, model="regression", forms=("hill",))
    assert "calibrate" in term.getvalue()
