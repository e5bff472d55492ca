"""Password hashing with argon2id (argon2-cffi), off the event loop."""

from functools import cached_property

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 8
# argon2 pre-hashes any length, but a cap keeps absurd request bodies out.
MAX_PASSWORD_LENGTH = 1024


class Passwords:
    """Hashes and checks passwords; each hash costs tens of milliseconds by design,
    so it runs in a worker thread rather than blocking every other request."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self.hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True when ``password`` matches. With no user (``None``) a dummy hash is
        checked anyway, so "no such email" takes as long as "wrong password"."""
        stored = password_hash if password_hash is not None else self._dummy_hash
        try:
            matches = await anyio.to_thread.run_sync(self.hasher.verify, stored, password)
        except (VerificationError, InvalidHashError):
            return False
        return matches and password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with weaker parameters than today's."""
        return self.hasher.check_needs_rehash(password_hash)

    @cached_property
    def _dummy_hash(self) -> str:
        return self.hasher.hash("not a password of anyone")


def password_problem(password: str) -> str | None:
    """Why ``password`` cannot be used, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Use at most {MAX_PASSWORD_LENGTH} characters."
    return None
