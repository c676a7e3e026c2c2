"""Entry point of the ``liftlab`` command: the group, and the one place errors become exit codes.

Exit status, as INTERFACE.md fixes it: 0 done; 2 bad input or usage, with one
line ``error: ...`` on stderr and no traceback; 1 an internal failure (the
traceback is kept, because it is a bug of ours).
"""

from __future__ import annotations

import functools
import math
import os
import signal
import sys
import warnings
from pathlib import Path
from typing import Any

import click

from causal.errors import ConfigError, LiftlabError, LiftlabWarning, mask_url
from experiments.store import command_line_default

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="liftlab")
def cli() -> None:
    """liftlab: design geo experiments, read them out, calibrate response curves, allocate budget."""
    # The command line draws figures only into files: the non-interactive backend, chosen here, at
    # the entry point, and not at the import of any module (a notebook importing the reports keeps
    # its own backend).
    import matplotlib

    matplotlib.use("Agg")
    _silence_solver_banner()


def _silence_solver_banner() -> None:
    """Start HiGHS once with file descriptor 1 closed, so its banner never reaches stdout.

    HiGHS prints its banner from C++ to file descriptor 1 when the process first constructs a
    solver, before any option can silence it; a command's stdout is for its own summary. The
    command line owns the process's output, so this happens here and nowhere in the library.
    """
    try:
        import highspy
    except ImportError:  # cvxpy without HiGHS: nothing prints
        return
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _register() -> None:
    # One module per subcommand under allocation/cli/commands/, each exposing ``command``.
    from allocation.cli.commands import (
        allocate,
        audit,
        backtest,
        calibrate,
        demo,
        design,
        propose_tests,
        readout,
        registry,
        replan,
        simulate,
        validate,
    )

    for module in (
        simulate,
        validate,
        design,
        readout,
        registry,
        calibrate,
        allocate,
        replan,
        propose_tests,
        audit,
        demo,
        backtest,
    ):
        _guard_paths(module.command)
        cli.add_command(module.command)


# Parameters naming a file or folder a command writes; every other path parameter is an input.
OUTPUT_PARAMS = ("out_path", "out_dir", "report_path")
# Database options: an SQLite file among them is an input that an --out must not replace.
DATABASE_PARAMS = ("db", "audit_db", "registry_url")
# Those that fall back to the default database when not given (--registry does not).
DEFAULT_DATABASE_PARAMS = ("db", "audit_db")


def _flag(cmd: click.Command, name: str) -> str:
    for p in cmd.params:
        if p.name == name and getattr(p, "opts", None):
            return p.opts[0]
    return name


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)  # both exist: symlinks and hard links too
    except (OSError, ValueError):
        pass
    try:
        return Path(a).resolve() == Path(b).resolve()
    except (OSError, RuntimeError, ValueError):  # a name too long, a symlink loop
        return os.path.abspath(a) == os.path.abspath(b)


def check_paths(cmd: click.Command, params: dict[str, Any]) -> None:
    """Refuse, before anything runs, a non-finite number or an output path that names an input.

    Raises
    ------
    ConfigError
        A float option is NaN or infinite; ``--out`` (or ``--report``) is
        empty, equal to an input file (the panel, a lift, curves, a plan, a
        design, an SQLite database...) or to the other output.
    """
    for p in cmd.params:
        # click's FLOAT accepts "nan" and "inf": no option of ours means either.
        value = params.get(p.name)
        if isinstance(p.type, click.types.FloatParamType) and value is not None:
            for v in value if isinstance(value, (tuple, list)) else [value]:
                if not math.isfinite(v):
                    raise ConfigError(f"{_flag(cmd, p.name)} must be a finite number, got {v}")
    path_params = {p.name for p in cmd.params if isinstance(p.type, click.Path)}
    outputs: list[tuple[str, str]] = []
    inputs: list[tuple[str, str]] = []
    for name, value in params.items():
        if value is None and name in DEFAULT_DATABASE_PARAMS:
            # The database used when none is given ($LIFTLAB_DB, else ./liftlab.db) is an input too.
            value = command_line_default()
        if value is None:
            continue
        values = list(value) if isinstance(value, (tuple, list)) else [value]
        if name in OUTPUT_PARAMS:
            for v in values:
                if str(v).strip() == "":
                    raise ConfigError(f"{_flag(cmd, name)} is empty: give a file name")
                outputs.append((name, str(v)))
        elif name in path_params or name in DATABASE_PARAMS:
            for v in values:
                text = str(v)
                if name in DATABASE_PARAMS and "://" in text:
                    if not text.startswith("sqlite:///"):
                        continue
                    text = text[len("sqlite:///") :].split("?")[0]
                if text:
                    inputs.append((name, text))
    for i, (oname, opath) in enumerate(outputs):
        for iname, ipath in inputs:
            if _same_file(opath, ipath):
                raise ConfigError(
                    f"{_flag(cmd, oname)} {opath} is the {_flag(cmd, iname)} input: "
                    "writing it would destroy the input; choose another file name"
                )
        for oname2, opath2 in outputs[i + 1 :]:
            if _same_file(opath, opath2):
                raise ConfigError(
                    f"{_flag(cmd, oname)} and {_flag(cmd, oname2)} are the same file {opath}: "
                    "one would overwrite the other"
                )


def _guard_paths(cmd: click.Command) -> None:
    """Wrap every (sub)command's callback with :func:`check_paths`: one check for all commands.

    The check runs on the parsed options, before the command's own code, so a
    refused command has read and written nothing.
    """
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            _guard_paths(sub)
        return
    callback = cmd.callback
    if callback is None or getattr(callback, "_liftlab_paths_checked", False):
        return

    @functools.wraps(callback)
    def checked(*args: Any, **kwargs: Any) -> Any:
        check_paths(cmd, kwargs)
        return callback(*args, **kwargs)

    checked._liftlab_paths_checked = True  # type: ignore[attr-defined]
    cmd.callback = checked


_register()


def _one_line(message: str) -> str:
    # One line, and no database password even if a library put a URL into its message.
    return mask_url(" ".join(str(message).split()))


def _terminate(signum: int, _frame: object) -> None:
    click.echo("error: terminated", err=True)
    sys.exit(128 + signum)


def main(argv: list[str] | None = None) -> None:
    """Run the command line; translate user errors into exit status 2."""
    warnings.simplefilter("default", LiftlabWarning)
    # A terminated command (kill, a CI timeout) unwinds like an interrupted one, so the atomic
    # writer deletes its staged files; the status is the shell's usual 128 + SIGTERM.
    try:
        signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread (an embedding application): leave signals alone
        pass
    try:
        cli.main(args=argv, prog_name="liftlab", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(EXIT_USAGE)
    except click.exceptions.ClickException as exc:
        # Usage errors (unknown option, bad value): click's own exit code is 2.
        click.echo(f"error: {_one_line(exc.format_message())}", err=True)
        sys.exit(EXIT_USAGE)
    except LiftlabError as exc:
        click.echo(f"error: {_one_line(str(exc))}", err=True)
        sys.exit(EXIT_USAGE)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(EXIT_OK)


if __name__ == "__main__":  # pragma: no cover
    main()
