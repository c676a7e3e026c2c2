"""Entry point of the ``liftlab`` command: the group, and the one place errors become exit codes.

Exit status, as INTERFACE.md fixes it: 0 done; 2 bad input or usage, with one
line ``error: ...`` on stderr and no traceback; 1 an internal failure (the
traceback is kept, because it is a bug of ours).
"""

from __future__ import annotations

import sys
import warnings

import click

from causal.errors import LiftlabError, LiftlabWarning

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="liftlab")
def cli() -> None:
    """liftlab: design geo experiments, read them out, calibrate response curves, allocate budget."""


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
        simulate, validate, design, readout, registry, calibrate, allocate, replan, propose_tests, audit,
        demo, backtest,
    ):
        cli.add_command(module.command)


_register()


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def main(argv: list[str] | None = None) -> None:
    """Run the command line; translate user errors into exit status 2."""
    warnings.simplefilter("default", LiftlabWarning)
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
