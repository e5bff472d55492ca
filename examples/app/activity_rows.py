"""What the "Recent activity" list on the sessions page shows for each audit entry."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from examples.app.audit import AuditLog
from examples.app.models import UserSession
from examples.app.user_agents import Device, parse_user_agent

WHAT = {"created": "Signed in", "rotated": "Session renewed", "revoked": "Signed out"}
# Why a session ended, as a person would say it (RevokeReason values).
REASONS = {
    "logout": "logged out",
    "revoke": "signed out from another session",
    "revoke_all": "signed out of all sessions",
    "password_change": "password changed",
    "eviction": "too many sessions",
    "expiry_purge": "expired",
}


@dataclass(frozen=True, slots=True)
class ActivityRow:
    at: datetime
    event: str  # created, rotated or revoked: for tests and styling
    reason: str | None  # a RevokeReason value
    what: str
    why: str
    # None when the session's browser is no longer known (its sign-in is older than the list).
    device: Device | None


def activity_rows(entries: Sequence[AuditLog], live_sessions: Sequence[UserSession]) -> list[ActivityRow]:
    # Only sign-ins record the user agent: later entries of the same session borrow it,
    # from the live session or from its sign-in entry when that is in the list.
    user_agents = {session.id: session.user_agent for session in live_sessions}
    user_agents.update({entry.session_id: entry.user_agent for entry in entries if entry.event == "created"})
    return [
        ActivityRow(
            at=entry.at,
            event=entry.event,
            reason=entry.reason,
            what=WHAT.get(entry.event, entry.event),
            why=_why(entry),
            device=_device(user_agents, entry.session_id),
        )
        for entry in entries
    ]


def _device(user_agents: dict[str, str | None], session_id: str) -> Device | None:
    if session_id not in user_agents:
        return None
    return parse_user_agent(user_agents[session_id])


def _why(entry: AuditLog) -> str:
    if entry.reason is not None:
        return REASONS.get(entry.reason, entry.reason)
    return "new device" if entry.new_device else ""
