"""An audit log of sign-ins and sign-outs, kept by a session event handler.

The handler runs inside the transaction that changes the session: the audit row
commits with the change, or rolls back with it, so the log never records a login
that did not happen nor misses one that did.

Wiring, in the app factory::

    anchor = Anchor(UserSession, ...)
    register_audit_log(anchor)
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from anchor_orm import (
    Anchor,
    SessionCreated,
    SessionEvent,
    SessionRevoked,
    SessionRotated,
    UTCDateTime,
)
from examples.app.models import User

EVENT_NAMES: dict[type[SessionEvent], str] = {
    SessionCreated: "created",
    SessionRotated: "rotated",
    SessionRevoked: "revoked",
}


class AuditLog(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    # The account's history goes with the account.
    user_id: int = Field(foreign_key="user.id", ondelete="CASCADE", index=True)
    # The public session id (never a token): matches the "your sessions" page.
    session_id: str = Field(max_length=22)
    # created, rotated or revoked.
    event: str = Field(max_length=16)
    # Why a session was revoked: logout, revoke, revoke_all, password_change, eviction, expiry_purge.
    reason: str | None = Field(default=None, max_length=32)
    # Of a created session: the first sign-in from this browser and address.
    new_device: bool | None = None
    ip_address: str | None = Field(default=None, max_length=45)
    user_agent: str | None = Field(default=None, max_length=512)

    @classmethod
    def from_event(cls, event: SessionEvent) -> "AuditLog":
        entry = cls(
            at=event.at,
            user_id=event.user_id,
            session_id=event.session_id,
            event=EVENT_NAMES.get(type(event), type(event).__name__),
        )
        if isinstance(event, SessionCreated):
            entry.new_device = event.new_device
            entry.ip_address = event.ip_address
            entry.user_agent = event.user_agent
        elif isinstance(event, SessionRevoked):
            entry.reason = event.reason.value
        return entry


def write_audit_row(event: SessionEvent, db: Any) -> None:
    # Added, not flushed: the application's commit writes it with the session change.
    db.add(AuditLog.from_event(event))


def register_audit_log(anchor: Anchor[Any]) -> None:
    """Keeps an AuditLog row for every session created, rotated or revoked by ``anchor``
    (its requests, ``anchor.repository(db)`` and ``anchor.purge_in_background``)."""
    anchor.events.subscribe(SessionEvent, write_audit_row, when="in_transaction")


async def audit_entries(db: AsyncSession, user: User, *, limit: int = 50) -> Sequence[AuditLog]:
    """The user's latest audit entries, newest first (for an "account activity" page)."""
    statement = (
        select(AuditLog)
        .where(AuditLog.user_id == user.id)
        .order_by(col(AuditLog.at).desc(), col(AuditLog.id).desc())
        .limit(limit)
    )
    return (await db.exec(statement)).all()
