"""anchor_orm: server-side sessions for FastAPI, stored as SQLModel entities.

The public names are the ones below; modules starting with ``_`` are private.
"""

from anchor_orm._anchor import Anchor, RequestSessions
from anchor_orm._engine import create_engine
from anchor_orm._errors import AnchorError, ConfigurationError, SessionConflict
from anchor_orm._events import (
    RevokeReason,
    SessionCreated,
    SessionEvent,
    SessionEvents,
    SessionRevoked,
    SessionRotated,
)
from anchor_orm._expiry import ExpiryPolicy, utc_now
from anchor_orm._models import AnchorSessionBase, UTCDateTime
from anchor_orm._purge import (
    BackgroundPurge,
    PurgeBatch,
    PurgeResult,
    purge_expired_sessions,
    purge_in_background,
)
from anchor_orm._repository import IssuedSession, SessionRepository
from anchor_orm._transport import CookieSettings
from anchor_orm.backends.session_backend import BackendError, SessionBackend
from anchor_orm.frontends.session_frontend import FrontendError, SessionFrontend
from anchor_orm.session_verifier import SessionVerifier

__version__ = "0.2.0"

__all__ = [
    "Anchor",
    "AnchorError",
    "AnchorSessionBase",
    "BackendError",
    "BackgroundPurge",
    "ConfigurationError",
    "CookieSettings",
    "ExpiryPolicy",
    "FrontendError",
    "IssuedSession",
    "PurgeBatch",
    "PurgeResult",
    "RequestSessions",
    "RevokeReason",
    "SessionBackend",
    "SessionConflict",
    "SessionCreated",
    "SessionEvent",
    "SessionEvents",
    "SessionFrontend",
    "SessionRepository",
    "SessionRevoked",
    "SessionRotated",
    "SessionVerifier",
    "UTCDateTime",
    "__version__",
    "create_engine",
    "purge_expired_sessions",
    "purge_in_background",
    "utc_now",
]
