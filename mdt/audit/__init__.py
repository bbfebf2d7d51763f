"""The audit trail: who changed which clinical record, when, and how."""
