"""The example app's audit log (examples/app/audit.py), kept by an in-transaction handler."""

from fastapi import Depends
from sqlmodel import select

from anchor_orm import Anchor, RevokeReason, purge_expired_sessions
from anchor_orm.testing import MovableClock
from examples.app.audit import AuditLog, audit_entries, register_audit_log
from examples.app.models import User, UserSession


def audited_anchor(clock: MovableClock) -> Anchor[UserSession]:
    anchor = Anchor(
        UserSession, db=Depends(lambda: None), secret_keys=["audit-test-key-" + "x" * 30], clock=clock
    )
    register_audit_log(anchor)
    return anchor


async def add_user(database, email: str) -> User:
    async with database.session() as db:
        user = User(email=email, password_hash="not-a-real-hash")
        db.add(user)
        await db.commit()
        return user


async def test_audit_log_records_each_session_change_with_its_transaction(database):
    clock = MovableClock()
    anchor = audited_anchor(clock)
    ada = await add_user(database, "ada@example.com")

    async with database.session() as db:
        sessions = anchor.repository(db)
        laptop = await sessions.create(ada, ip_address="203.0.113.5", user_agent="Firefox")
        await db.commit()
    async with database.session() as db:
        await anchor.repository(db).create(
            await db.get(User, ada.id), ip_address="203.0.113.5", user_agent="Firefox"
        )
        await db.rollback()  # this login never happened: no audit row either
    clock.advance(minutes=1)
    async with database.session() as db:
        sessions = anchor.repository(db)
        ada = await db.get(User, ada.id)
        phone = await sessions.create(ada, ip_address="198.51.100.7", user_agent="Safari")
        laptop_session = await db.get(UserSession, laptop.session.id)
        await sessions.rotate(laptop_session, reauthenticated=True)
        await sessions.revoke_all(ada, keep=laptop_session, reason=RevokeReason.PASSWORD_CHANGE)
        await db.commit()
    clock.advance(days=15)
    await purge_expired_sessions(database.engine, UserSession, clock=clock, events=anchor.events)

    async with database.session() as db:
        entries = await audit_entries(db, await db.get(User, ada.id))
    assert [(e.event, e.session_id, e.reason, e.new_device) for e in reversed(entries)] == [
        ("created", laptop.session.id, None, True),
        ("created", phone.session.id, None, True),
        ("rotated", laptop.session.id, None, None),
        ("revoked", phone.session.id, "password_change", None),
        ("revoked", laptop.session.id, "expiry_purge", None),
    ]
    assert (entries[-1].ip_address, entries[-1].user_agent) == ("203.0.113.5", "Firefox")
    assert entries[0].at == clock()


async def test_audit_rows_go_with_the_deleted_account(database):
    anchor = audited_anchor(MovableClock())
    ada = await add_user(database, "ada@example.com")
    async with database.session() as db:
        await anchor.repository(db).create(ada)
        await db.commit()
    async with database.session() as db:
        await db.delete(await db.get(User, ada.id))
        await db.commit()
    async with database.session() as db:
        assert (await db.exec(select(AuditLog))).all() == []


async def test_deleting_an_account_after_revoke_all_commits_with_the_audit_handler(database):
    # The example app's "delete my account": revoke_all, then delete the user, one transaction.
    anchor = audited_anchor(MovableClock())
    ada = await add_user(database, "ada@example.com")
    async with database.session() as db:
        await anchor.repository(db).create(await db.get(User, ada.id))
        await db.commit()
    async with database.session() as db:
        user = await db.get(User, ada.id)
        assert await anchor.repository(db).revoke_all(user) == 1
        await db.delete(user)
        await db.commit()
    async with database.session() as db:
        assert (await db.exec(select(AuditLog))).all() == []
        assert await db.get(User, ada.id) is None
