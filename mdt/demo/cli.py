"""``flask --app mdt demo load``: load the demo data once."""
from __future__ import annotations

import click
from flask.cli import AppGroup

from mdt.demo import data

demo_cli = AppGroup("demo", help="Demo data.")


@demo_cli.command("load")
def load_command() -> None:
    """Load demo data unless it is already there; print the demo sign-ins."""
    created = data.load()
    click.echo("Demo data loaded." if created else "Demo data already present.")
    click.echo(data.sign_in_help())
