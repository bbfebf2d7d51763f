"""mdt: run cancer multidisciplinary team meetings.

``create_app`` builds the Flask application; each feature lives in its own
package (``auth``, ``meetings``, ``cases``, ``decisions``, ``notifications``,
``audit``, ``home``) with models, forms, services and views.
"""
from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

from mdt.config import check_clock, check_config, configure

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _data_folder(name: str) -> str:
    """``templates`` or ``migrations``: in the package when installed from a wheel
    (see setup.py), else beside it at the top of the checkout."""
    shipped = Path(__file__).resolve().parent / name
    return str(shipped if shipped.is_dir() else PROJECT_ROOT / name)


def create_app(test_config: dict | None = None) -> Flask:
    """Create and configure the application."""
    app = Flask(
        __name__,
        instance_path=os.environ.get("MDT_INSTANCE_PATH", str(PROJECT_ROOT / "instance")),
        instance_relative_config=True,
        template_folder=_data_folder("templates"),
    )
    configure(app, test_config)
    check_config(app.config)
    check_clock(app.config)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    _init_extensions(app)
    _register_blueprints(app)
    _register_cli(app)
    from mdt.errors import register_error_handlers
    from mdt.web import register_web_helpers

    register_error_handlers(app)
    register_web_helpers(app)
    return app


def _init_extensions(app: Flask) -> None:
    from sqlalchemy import event

    from mdt.extensions import csrf, db, login_manager, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=_data_folder("migrations"), render_as_batch=True,
                     compare_type=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", _sqlite_pragmas)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """Foreign keys on, WAL journal and a busy timeout for every SQLite connection."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _register_blueprints(app: Flask) -> None:
    from mdt import models  # noqa: F401  (registers every model with the metadata)
    from mdt.admin.views import bp as admin_bp
    from mdt.audit.views import bp as audit_bp
    from mdt.auth.views import bp as auth_bp
    from mdt.cases.views import bp as cases_bp
    from mdt.decisions.views import bp as decisions_bp
    from mdt.delivery.views import bp as delivery_bp
    from mdt.home.views import bp as home_bp
    from mdt.meetings.views import bp as meetings_bp
    from mdt.notifications.views import bp as notifications_bp

    for bp in (home_bp, auth_bp, admin_bp, meetings_bp, cases_bp, decisions_bp, audit_bp,
               notifications_bp, delivery_bp):
        app.register_blueprint(bp)


def _register_cli(app: Flask) -> None:
    from mdt.auth.cli import user_cli
    from mdt.delivery.cli import notifications_cli
    from mdt.demo.cli import demo_cli

    app.cli.add_command(user_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(notifications_cli)
