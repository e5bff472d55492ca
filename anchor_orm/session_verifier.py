"""The verifier of the fastapi-anchor API: from the request's session id to its data.

A subclass names the frontend it pairs with (``identifier``), the backend to read, and
what a valid session is (``verify_session``, plain or async). Used as a dependency it
gives the session data, or a 401 (``auth_http_exception``), or None when
``auto_error`` is False; never an error object, never a 500.
"""

import inspect
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable
from typing import Generic

from fastapi import HTTPException
from starlette.requests import Request

from anchor_orm.backends.session_backend import SessionBackend, SessionModel
from anchor_orm.frontends.session_frontend import ID, FrontendError

logger = logging.getLogger("anchor_orm")


class SessionVerifier(ABC, Generic[ID, SessionModel]):
    @property
    @abstractmethod
    def identifier(self) -> str:
        """The identifier of the frontend whose session id this verifier reads."""

    @property
    @abstractmethod
    def backend(self) -> SessionBackend[ID, SessionModel]: ...

    @property
    @abstractmethod
    def auto_error(self) -> bool:
        """True: refuse with ``auth_http_exception``; False: give None."""

    @property
    @abstractmethod
    def auth_http_exception(self) -> HTTPException: ...

    @abstractmethod
    def verify_session(self, model: SessionModel) -> bool | Awaitable[bool]:
        """Whether the stored session is acceptable; may be a coroutine."""

    async def __call__(self, request: Request) -> SessionModel | None:
        session_id = self._session_id_found_by_frontend(request)
        if session_id is None or isinstance(session_id, FrontendError):
            return self._refuse()
        session_data = await self.backend.read(session_id)
        if session_data is None:
            return self._refuse()
        verdict = self.verify_session(session_data)
        if inspect.isawaitable(verdict):
            verdict = await verdict
        if not verdict:
            return self._refuse()
        return session_data

    def _session_id_found_by_frontend(self, request: Request) -> ID | FrontendError | None:
        session_ids = getattr(request.state, "session_ids", None)
        if isinstance(session_ids, dict) and self.identifier in session_ids:
            found: ID | FrontendError = session_ids[self.identifier]
            return found
        # A route that forgot the frontend dependency: the client gets the ordinary
        # refusal, the developer a log line naming the fix.
        logger.error(
            "%s found no session id for identifier %r: the frontend did not run before it. "
            "Add dependencies=[Depends(cookie)] to the route (or to the app or router), where "
            "cookie is the SessionCookie with identifier=%r.",
            type(self).__name__,
            self.identifier,
            self.identifier,
        )
        return None

    def _refuse(self) -> SessionModel | None:
        if self.auto_error:
            raise self.auth_http_exception
        return None
