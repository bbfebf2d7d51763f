"""Administration screens: users (and, later, operations pages)."""
