"""The session entity that applications subclass, and the UTC datetime column type."""

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

# 22 URL-safe characters carry 128 random bits: more than the 80 the design asks for,
# and short enough to show in a "your sessions" list.
SESSION_ID_LENGTH = 22
SHA256_HEX_LENGTH = 64
USER_AGENT_MAX_LENGTH = 512
# An IPv6 address with a zone index fits in 45 characters.
IP_ADDRESS_MAX_LENGTH = 45


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware datetime that stays aware, in UTC, on every database.

    aiosqlite drops the offset of ``DateTime(timezone=True)`` and loads naive values,
    which then fail to compare with an aware ``now`` and sort wrongly when offsets
    were mixed. Storing UTC everywhere and attaching UTC on load fixes both.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            # A naive value is ambiguous: refusing it beats silently storing local time.
            raise ValueError(f"anchor_orm stores timezone-aware datetimes only; got naive {value!r}")
        utc_value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # SQLite compares the stored text: one fixed form (naive UTC) keeps ORDER BY right.
            return utc_value.replace(tzinfo=None)
        return utc_value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class AnchorSessionBase(SQLModel):
    """The columns of a login session. Subclass it with ``table=True``.

    The subclass adds its own foreign key to the user and the relationship, because
    SQLModel cannot carry a Relationship on a non-table base class::

        class UserSession(AnchorSessionBase, table=True):
            user_id: int = Field(foreign_key="user.id", ondelete="CASCADE", index=True)
            user: User = Relationship()
    """

    # Public: shown in session lists and used to revoke one session.
    id: str = Field(primary_key=True, max_length=SESSION_ID_LENGTH)
    # sha256 of the token's secret, hex; the secret itself is never stored, so a copy
    # of this table yields no live session.
    secret_hash: str = Field(max_length=SHA256_HEX_LENGTH)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    last_seen_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    # Indexed: purge walks it.
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    absolute_expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    # The last real login (password, passkey...): "fresh login" checks read it.
    authenticated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    # False for "remember me: no": a browser-session cookie and the shorter idle timeout.
    remember: bool = Field(default=True)
    ip_address: str | None = Field(default=None, max_length=IP_ADDRESS_MAX_LENGTH)
    user_agent: str | None = Field(default=None, max_length=USER_AGENT_MAX_LENGTH)
    data: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
