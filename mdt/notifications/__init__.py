"""Notifications: rows with a due time, dispatched by the worker, shown in-app."""
