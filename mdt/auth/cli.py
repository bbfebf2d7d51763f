"""``flask --app mdt user …``: manage users from the command line."""
from __future__ import annotations

import os

import click
from flask.cli import AppGroup

from mdt.auth import services
from mdt.auth.models import Discipline, Role
from mdt.errors import DomainError
from mdt.extensions import db

user_cli = AppGroup("user", help="Manage users.")


@user_cli.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--discipline", type=click.Choice([d.value for d in Discipline]), default="other")
@click.option("--role", "roles", multiple=True, required=True,
              type=click.Choice([r.value for r in Role]), help="Repeat for several roles.")
def create_user_command(email: str, name: str, discipline: str, roles: tuple[str, ...]) -> None:
    """Create a user. The password comes from MDT_NEW_USER_PASSWORD or a prompt."""
    password = os.environ.get("MDT_NEW_USER_PASSWORD") or click.prompt(
        "Password", hide_input=True, confirmation_prompt=True)
    try:
        user = services.create_user(actor=None, email=email, name=name,
                                    discipline=Discipline(discipline),
                                    roles=[Role(r) for r in roles], password=password)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from exc
    click.echo(f"Created user {user.id} <{user.email}> with roles {', '.join(sorted(roles))}.")


@user_cli.command("list")
def list_users_command() -> None:
    """List users with their roles and whether they are active."""
    for user in services.list_users():
        state = "active" if user.is_active else "deactivated"
        roles = ",".join(sorted(r.value for r in user.roles))
        click.echo(f"{user.id}\t{user.email}\t{user.name}\t{user.discipline.value}\t{roles}\t{state}")
