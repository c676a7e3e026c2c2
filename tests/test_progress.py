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
