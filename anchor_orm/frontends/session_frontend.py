"""The frontend interface of the fastapi-anchor API (kept from fastapi-anchor 0.1.1).

A frontend reads the session id from a request and records it on ``request.state``
under its ``identifier``, where a ``SessionVerifier`` with the same identifier finds it.
"""

from abc import ABC, abstractmethod
from typing import Generic, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from anchor_orm._errors import AnchorError

ID = TypeVar("ID")


class FrontendError(AnchorError):
    """Why a frontend found no usable session id on a request."""


class SessionFrontend(ABC, Generic[ID]):
    """Reads a session id from requests and writes it to (or clears it from) responses.

    Subclasses also define ``__call__``, the FastAPI dependency that extracts the id;
    it is not declared here because its parameters differ from frontend to frontend.
    """

    @property
    @abstractmethod
    def identifier(self) -> str:
        """The name that pairs this frontend with its SessionVerifier."""

    @abstractmethod
    def attach_to_response(self, response: Response, session_id: ID) -> None:
        """Makes the client carry ``session_id`` from now on."""

    @abstractmethod
    def delete_from_response(self, response: Response) -> None:
        """Makes the client forget its session id."""

    def attach_id_state(self, request: Request, session_id: ID | FrontendError) -> None:
        """Records what this frontend found, for the verifier with the same identifier."""
        session_ids = getattr(request.state, "session_ids", None)
        if not isinstance(session_ids, dict):
            session_ids = {}
            request.state.session_ids = session_ids
        session_ids[self.identifier] = session_id
