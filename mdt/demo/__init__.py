"""Demo data for ``make run``: fictional people, a weekly series, cases."""
