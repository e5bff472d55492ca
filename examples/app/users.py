"""Finding and creating users; the rules an email address must follow here."""

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from examples.app.models import User

MAX_EMAIL_LENGTH = 320


def normalize_email(email: str) -> str:
    return email.strip().lower()


def email_problem(email: str) -> str | None:
    """Why ``email`` (already normalized) cannot be used, or None."""
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in email):
        return "Enter an email address such as ada@example.com."
    if len(email) > MAX_EMAIL_LENGTH:
        return f"Use at most {MAX_EMAIL_LENGTH} characters."
    return None


async def find_user(db: AsyncSession, email: str) -> User | None:
    return (await db.exec(select(User).where(User.email == normalize_email(email)))).first()
