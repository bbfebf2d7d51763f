"""Import every feature's models so SQLAlchemy and Alembic see the whole schema."""
from mdt.audit.models import AuditEntry  # noqa: F401
from mdt.auth.models import Discipline, Role, ThrottleCounter, User, UserRole  # noqa: F401
from mdt.cases.models import Case, CaseReference, Patient  # noqa: F401
from mdt.decisions.models import (  # noqa: F401
    Amendment,
    Consensus,
    ConsensusAction,
    Opinion,
    Proposal,
)
from mdt.delivery.models import DispatcherRun, Lease  # noqa: F401
from mdt.meetings.models import (  # noqa: F401
    AgendaItem,
    Attendance,
    Meeting,
    MeetingCorrection,
    MeetingSeries,
)
from mdt.notifications.models import (  # noqa: F401
    CalendarFeedToken,
    Notification,
    NotificationPreference,
)
