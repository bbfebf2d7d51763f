"""Real servers and processes for the worker and delivery tests."""
