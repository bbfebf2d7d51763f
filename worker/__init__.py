"""The Celery worker and beat: ``celery -A worker worker`` / ``celery -A worker beat``.

``celery -A worker`` finds ``worker/celery.py``, which builds the Flask app
from the environment (``MDT_*``), binds a Celery app to it (Flask's
``celery_init_app`` pattern) and registers the tasks. Importing the package
itself builds nothing, so tests can use ``worker.celery_app`` and
``worker.tasks`` with their own Flask app. ``mdt`` never imports ``worker``.
"""
