"""``flask --app mdt notifications …``: see and repair notification delivery."""
from __future__ import annotations

from datetime import datetime

import click
from flask import current_app
from flask.cli import AppGroup

from mdt import clock, timezones
from mdt.delivery import dispatcher, operations
from mdt.errors import DomainError
from mdt.extensions import db
from mdt.web import format_datetime

notifications_cli = AppGroup("notifications",
                             help="Notification delivery: status, resend, dispatch.")


def _when(moment: datetime) -> str:
    zone = timezones.default_zone_name()
    return f"{format_datetime(moment, zone)} ({format_datetime(moment, 'UTC')})"


@notifications_cli.command("status")
def status_command() -> None:
    """Show counts by status, the oldest pending notification and the last dispatcher run."""
    status = operations.delivery_status()
    for name, count in status.counts.items():
        click.echo(f"{name:>10}: {count}")
    if status.oldest_pending_due_at is not None:
        click.echo(f"oldest pending due: {_when(status.oldest_pending_due_at)}")
    else:
        click.echo("oldest pending due: none pending")
    run = status.last_run
    if run is None:
        click.echo("last dispatcher run: never")
    else:
        click.echo(f"last dispatcher run: {_when(run.started_at)}, published {run.published}, "
                   f"released {run.released}, left for later {run.unpublished}"
                   + (f", error: {run.error}" if run.error else ""))
    retrying = status.retrying
    click.echo(f"  retrying: {retrying.count}" + (
        f" (failing since {_when(retrying.failing_since)})" if retrying.failing_since else ""))
    if status.failing:
        click.secho(f"WARNING: delivery is failing: {retrying.count} notifications are waiting "
                    f"to be retried; last error: {retrying.last_error}", fg="red", err=True)
    if status.dispatcher_stale:
        minutes = int(operations.DISPATCHER_STALE_AFTER.total_seconds() // 60)
        cause = operations.stale_dispatcher_cause(current_app.config["BROKER_URL"])
        click.secho(f"WARNING: the dispatcher has not run for {minutes} minutes. {cause} "
                    "See docs/operations.md, 'Watching it'.", fg="yellow", err=True)


@notifications_cli.command("resend")
@click.argument("notification_id", type=int)
def resend_command(notification_id: int) -> None:
    """Queue a failed, cancelled or sent notification again."""
    try:
        notification = operations.resend(notification_id, actor=None)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from exc
    click.echo(f"Notification {notification.id} is pending again; the next dispatcher run "
               "sends it.")


@notifications_cli.command("resend-failed")
def resend_failed_command() -> None:
    """Queue every failed notification again (each audited as a resend)."""
    count = operations.resend_all_failed(actor=None)
    db.session.commit()
    click.echo(f"{count} failed notification{'' if count == 1 else 's'} pending again; the next "
               "dispatcher run sends them.")


@notifications_cli.command("dispatch")
def dispatch_command() -> None:
    """Run one dispatcher pass now (publishes due notifications to the broker)."""
    result = dispatcher.dispatch()
    if not result.ran:
        raise click.ClickException("Another dispatcher holds the lease; try again in a minute.")
    click.echo(f"{clock.now():%H:%M:%S} UTC: published {result.published}, released "
               f"{result.released} stale claims, left {result.unpublished} for the next run.")
    if result.error:
        raise click.ClickException(result.error)
