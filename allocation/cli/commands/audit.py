"""``liftlab audit``: list and show the recorded allocation decisions."""

from __future__ import annotations

import json

import click

from allocation.audit import AuditLog, mask_url
from allocation.cli.options import audit_db_option as _db_option


@click.group("audit")
def command() -> None:
    """The audit trail of every allocate and replan."""


@command.command("list")
@_db_option
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
def list_cmd(audit_db: str, limit: int) -> None:
    """Recorded decisions, newest first."""
    rows = AuditLog(audit_db, create=False).list(limit)
    if not rows:
        click.echo("no records")
        return
    for r in rows:
        gap = "—" if r["gap"] is None else f"{r['gap']:.1e}"
        spend = "—" if r["total_spend"] is None else f"{r['total_spend']:,.2f}"
        inc = "—" if r["total_incremental"] is None else f"{r['total_incremental']:,.2f}"
        click.echo(
            f"{r['id']:>6}  {r['created_at'][:19]}  {r['command']:<16} {r['status']:<10} gap {gap:<8} "
            f"spend {spend:>14} incremental {inc:>12}  {r['inputs_hash'][:12]}"
        )


@command.command("show")
@_db_option
@click.argument("record_id", type=int)
def show_cmd(audit_db: str, record_id: int) -> None:
    """One decision in full, as JSON."""
    click.echo(
        mask_url(
            json.dumps(AuditLog(audit_db, create=False).show(record_id), indent=2, default=str)
        )
    )
