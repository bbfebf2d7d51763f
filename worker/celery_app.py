"""Bind a Celery app to the Flask app (Flask docs, ``examples/celery``)."""
from __future__ import annotations

from celery import Celery, Task
from flask import Flask

from mdt.delivery.broker import celery_settings
from worker.schedule import beat_schedule


def celery_init_app(app: Flask) -> Celery:
    """Create the Celery app whose tasks run inside a Flask app context."""

    class FlaskTask(Task):
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.conf.update(celery_settings(app.config))
    celery_app.conf.beat_schedule = beat_schedule()
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app
