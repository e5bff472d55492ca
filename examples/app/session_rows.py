"""What the "Your sessions" list shows for each session, for pages and the API alike."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from examples.app.models import UserSession
from examples.app.user_agents import Device, parse_user_agent


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: str
    device: Device
    ip_address: str | None
    created_at: datetime
    # Written at most once per touch interval (10 minutes by default): "about".
    last_seen_at: datetime
    expires_at: datetime
    remember: bool
    is_current: bool


def session_rows(sessions: Sequence[UserSession], current: UserSession) -> list[SessionRow]:
    return [
        SessionRow(
            id=session.id,
            device=parse_user_agent(session.user_agent),
            ip_address=session.ip_address,
            created_at=session.created_at,
            last_seen_at=session.last_seen_at,
            expires_at=session.expires_at,
            remember=session.remember,
            is_current=session.id == current.id,
        )
        for session in sessions
    ]
