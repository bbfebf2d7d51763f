"""The Celery worker and beat: ``celery -A worker worker`` / ``celery -A worker beat``.

Importing this package builds the Flask app from the environment (``MDT_*``)
and binds a Celery app to it (Flask's ``celery_init_app`` pattern), then
registers the tasks. ``mdt`` never imports ``worker``.
"""
from __future__ import annotations

from mdt import create_app
from worker.celery_app import celery_init_app

flask_app = create_app()
celery_app = celery_init_app(flask_app)

from worker import tasks  # noqa: E402,F401  (registers the shared tasks)

__all__ = ["celery_app", "flask_app"]
