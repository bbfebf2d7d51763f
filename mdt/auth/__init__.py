"""People, roles, sign-in and who may do what."""
