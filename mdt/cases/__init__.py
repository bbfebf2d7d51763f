"""Patients, the cases referred to the MDT, and their readiness."""
