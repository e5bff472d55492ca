"""Sessions in a dictionary: for development and tests, gone when the process stops."""

import time
from collections.abc import Callable

from anchor_orm._errors import ConfigurationError
from anchor_orm.backends.session_backend import BackendError, SessionBackend, SessionModel
from anchor_orm.frontends.session_frontend import ID

FOURTEEN_DAYS_SECONDS = 14 * 24 * 60 * 60


class InMemoryBackend(SessionBackend[ID, SessionModel]):
    """Stores copies of session data in ``self.data``; each session expires
    ``expire_seconds`` after it was created (None: never, as in fastapi-anchor 0.1.1).

    Expired sessions read as None and are dropped as new ones are created, so memory
    holds the live sessions only. ``clock`` gives seconds (monotonic by default).
    """

    def __init__(
        self,
        *,
        expire_seconds: float | None = FOURTEEN_DAYS_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if expire_seconds is not None and expire_seconds <= 0:
            raise ConfigurationError(f"expire_seconds={expire_seconds}: give a positive number, or None.")
        self.data: dict[ID, SessionModel] = {}
        # Every session gets the same lifetime, so insertion order is expiry order:
        # the sweep stops at the first live entry.
        self._expires_at: dict[ID, float] = {}
        self._expire_seconds = expire_seconds
        self._clock = clock

    async def create(self, session_id: ID, data: SessionModel) -> None:
        self._drop_expired()
        if session_id in self.data:
            raise BackendError("create can't overwrite an existing session")
        # A copy: the caller changing its object later must not change the session.
        self.data[session_id] = data.model_copy(deep=True)
        if self._expire_seconds is not None:
            self._expires_at[session_id] = self._clock() + self._expire_seconds

    async def read(self, session_id: ID) -> SessionModel | None:
        if not self._is_live(session_id):
            return None
        return self.data[session_id].model_copy(deep=True)

    async def update(self, session_id: ID, data: SessionModel) -> None:
        # The lifetime still counts from creation: an update never revives or extends.
        if not self._is_live(session_id):
            raise BackendError("session does not exist, cannot update")
        self.data[session_id] = data.model_copy(deep=True)

    async def delete(self, session_id: ID) -> None:
        self.data.pop(session_id, None)
        self._expires_at.pop(session_id, None)

    def _is_live(self, session_id: ID) -> bool:
        if session_id not in self.data:
            return False
        expires_at = self._expires_at.get(session_id)
        if expires_at is not None and self._clock() >= expires_at:
            del self.data[session_id]
            del self._expires_at[session_id]
            return False
        return True

    def _drop_expired(self) -> None:
        now = self._clock()
        expired = []
        for session_id, expires_at in self._expires_at.items():
            if expires_at > now:
                break
            expired.append(session_id)
        for session_id in expired:
            del self.data[session_id]
            del self._expires_at[session_id]
