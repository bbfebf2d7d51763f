"""The worker's entry point: the Flask app from the environment and its Celery app."""
from __future__ import annotations

from mdt import create_app
from worker.celery_app import celery_init_app

flask_app = create_app()
celery_app = celery_init_app(flask_app)

from worker import tasks  # noqa: E402,F401  (registers the shared tasks)
