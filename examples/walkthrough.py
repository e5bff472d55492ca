"""A tour of anchor_orm without a server: two devices, a protected route, the session
list, revoking one device, and logging out everywhere, each step with its HTTP status.

    .venv/bin/python examples/walkthrough.py          # SQLite in a temporary folder
    DATABASE_URL=postgresql+asyncpg://... .venv/bin/python examples/walkthrough.py
"""

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI
from sqlmodel import Field, Relationship, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from anchor_orm import Anchor, AnchorSessionBase, RequestSessions, create_engine


class WalkUser(SQLModel, table=True):
    __tablename__ = "walk_user"
    id: int | None = Field(default=None, primary_key=True)
    email: str


class WalkSession(AnchorSessionBase, table=True):
    __tablename__ = "walk_session"
    user_id: int = Field(foreign_key="walk_user.id", ondelete="CASCADE", index=True)
    user: WalkUser = Relationship()


def build_app(database_url: str) -> tuple[FastAPI, object]:
    engine = create_engine(database_url)

    async def get_db() -> AsyncIterator[AsyncSession]:
        async with AsyncSession(engine, expire_on_commit=False) as db, db.begin():
            yield db

    DB = Annotated[AsyncSession, Depends(get_db, scope="function")]
    anchor = Anchor(WalkSession, db=DB, secret_keys=["walkthrough-only-secret-key-0123456789"])
    CurrentSession = Annotated[WalkSession, Depends(anchor.get_session)]
    Sessions = Annotated[RequestSessions[WalkSession], Depends(anchor.sessions)]
    app = FastAPI()
    anchor.install(app)

    @app.post("/login", dependencies=[Depends(anchor.csrf_protect)])
    async def login(email: str, db: DB, sessions: Sessions) -> dict[str, str]:
        user = (await db.exec(select(WalkUser).where(WalkUser.email == email))).first()
        if user is None:
            user = WalkUser(email=email)
            db.add(user)
            await db.flush()
        issued = await sessions.login(user)
        return {"session_id": issued.session.id}

    @app.get("/me")
    async def me(session: CurrentSession) -> dict[str, str]:
        return {"email": session.user.email, "session_id": session.id}

    @app.get("/sessions")
    async def list_sessions(session: CurrentSession, sessions: Sessions) -> list[str]:
        return [s.id for s in await sessions.list(session.user)]

    @app.post("/sessions/{session_id}/revoke")
    async def revoke(session_id: str, session: CurrentSession, sessions: Sessions) -> dict[str, bool]:
        return {"revoked": await sessions.revoke(session_id, owner=session.user)}

    @app.post("/logout-everywhere")
    async def logout_everywhere(session: CurrentSession, sessions: Sessions) -> dict[str, int]:
        return {"revoked": await sessions.revoke_all(session.user)}

    return app, engine


async def main(database_url: str) -> None:
    app, engine = build_app(database_url)
    async with engine.begin() as connection:  # type: ignore[attr-defined]
        await connection.run_sync(
            SQLModel.metadata.drop_all, tables=[WalkSession.__table__, WalkUser.__table__]
        )
        await connection.run_sync(
            SQLModel.metadata.create_all, tables=[WalkUser.__table__, WalkSession.__table__]
        )
    base_url = "https://walkthrough.example"
    same_origin = {"origin": base_url}
    transport = httpx.ASGITransport(app=app)

    def step(what: str, response: httpx.Response) -> None:
        print(f"{response.status_code}  {what:<44} {response.text[:70]}")

    async with (
        httpx.AsyncClient(transport=transport, base_url=base_url) as laptop,
        httpx.AsyncClient(transport=transport, base_url=base_url) as phone,
    ):
        step(
            "laptop: log in as ada",
            await laptop.post("/login", params={"email": "ada@example.com"}, headers=same_origin),
        )
        phone_login = await phone.post("/login", params={"email": "ada@example.com"}, headers=same_origin)
        step("phone: log in as ada", phone_login)
        step("laptop: GET /me (protected)", await laptop.get("/me"))
        step("laptop: list ada's sessions", await laptop.get("/sessions"))
        phone_id = phone_login.json()["session_id"]
        step(
            "laptop: revoke the phone's session",
            await laptop.post(f"/sessions/{phone_id}/revoke", headers=same_origin),
        )
        step("phone: GET /me after being revoked", await phone.get("/me"))
        step(
            "phone: log in again",
            await phone.post("/login", params={"email": "ada@example.com"}, headers=same_origin),
        )
        step("phone: log out everywhere", await phone.post("/logout-everywhere", headers=same_origin))
        step("laptop: GET /me after logout everywhere", await laptop.get("/me"))
        step("phone: GET /me after logout everywhere", await phone.get("/me"))
    await engine.dispose()  # type: ignore[attr-defined]


if __name__ == "__main__":
    url = os.environ.get("DATABASE_URL")
    if url:
        asyncio.run(main(url))
    else:
        with tempfile.TemporaryDirectory() as folder:
            asyncio.run(main(f"sqlite+aiosqlite:///{folder}/walkthrough.db"))
