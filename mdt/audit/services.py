"""Write and read audit entries."""
from __future__ import annotations

from typing import Any

from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from mdt.audit.models import AuditEntry
from mdt.auth.models import User
from mdt.extensions import db


def record(action: str, summary: str, *, actor: User | None, obj: Any = None,
           case_id: int | None = None, data: dict[str, Any] | None = None) -> AuditEntry:
    """Add an audit entry to the current transaction (the caller commits).

    ``actor`` is who did it, passed by the service that was asked to act;
    ``None`` means the system (the worker, a CLI command, a failed sign-in by
    an unknown address). It is required so that no caller forgets it.
    """
    entry = AuditEntry(
        action=action,
        summary=summary[:500],
        object_type=type(obj).__tablename__ if obj is not None else None,
        object_id=getattr(obj, "id", None),
        case_id=case_id,
        data=_jsonable(data or {}),
        actor_id=actor.id if actor is not None else None,
    )
    db.session.add(entry)
    return entry


def changes(obj: Any, values: dict[str, Any]) -> dict[str, list[Any]]:
    """Apply ``values`` to ``obj`` and return ``{field: [old, new]}`` for what changed."""
    diff: dict[str, list[Any]] = {}
    for field, new in values.items():
        old = getattr(obj, field)
        if old != new:
            diff[field] = [old, new]
            setattr(obj, field, new)
    return diff


#: Audit entries per page of a case's history.
HISTORY_PER_PAGE = 100


def history_for_case(case_id: int, *, page: int = 1,
                     per_page: int | None = None) -> Pagination:
    """Return one page of the audit entries that concern a case, newest first."""
    query = (select(AuditEntry).where(AuditEntry.case_id == case_id)
             .options(joinedload(AuditEntry.actor))
             .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc()))
    return db.paginate(query, page=page, per_page=per_page or HISTORY_PER_PAGE,
                       error_out=False)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
