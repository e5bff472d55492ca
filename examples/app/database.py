"""The database dependency: one AsyncSession and one transaction per request.

FastAPI's and SQLModel's tutorials call this dependency ``get_session``; here that
name belongs to anchor_orm's *auth* session, so the database one is ``get_db``.
"""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    """Commits when the route returns, rolls back when it raises.

    Declared with ``scope="function"`` below: the commit then happens before the
    response is sent, so a login cookie never goes out for a row that failed to save.
    """
    async with AsyncSession(request.app.state.engine, expire_on_commit=False) as db, db.begin():
        yield db


DB = Annotated[AsyncSession, Depends(get_db, scope="function")]
