"""The backend interface of the fastapi-anchor API (kept from fastapi-anchor 0.1.1)."""

from abc import ABC, abstractmethod
from typing import Generic, TypeVar

from pydantic import BaseModel

from anchor_orm._errors import AnchorError
from anchor_orm.frontends.session_frontend import ID

SessionModel = TypeVar("SessionModel", bound=BaseModel)


class BackendError(AnchorError):
    """A backend operation that cannot be done, such as creating an id that exists."""


class SessionBackend(ABC, Generic[ID, SessionModel]):
    """Stores session data by session id.

    ``delete`` of an id that is not there is not an error: logging out twice, or with
    a session that already expired, simply finds nothing to remove.
    """

    @abstractmethod
    async def create(self, session_id: ID, data: SessionModel) -> None:
        """Stores a new session; BackendError if ``session_id`` exists."""

    @abstractmethod
    async def read(self, session_id: ID) -> SessionModel | None:
        """The live session's data, or None when it is unknown or expired."""

    @abstractmethod
    async def update(self, session_id: ID, data: SessionModel) -> None:
        """Replaces a live session's data; BackendError if there is none."""

    @abstractmethod
    async def delete(self, session_id: ID) -> None:
        """Removes the session, if it exists."""
