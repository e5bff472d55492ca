"""Session tokens: ``<id>.<secret>``, the hash kept at rest, and the signed form."""

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from itsdangerous import BadSignature, Signer

from anchor_orm._errors import ConfigurationError

SESSION_ID_BYTES = 16  # 128 bits, URL-safe base64 without padding: 22 characters
SECRET_BYTES = 32  # 256 bits
MIN_SIGNING_KEY_LENGTH = 32  # characters
# Far above any value we sign (about 120 characters); refusing early keeps a 5 KB
# junk cookie from costing an HMAC.
MAX_SIGNED_TOKEN_LENGTH = 256
SIGNING_SALT = "anchor_orm.session-token"


@dataclass(frozen=True, slots=True)
class TokenParts:
    session_id: str
    secret: str


def new_token() -> TokenParts:
    return TokenParts(new_session_id(), secrets.token_urlsafe(SECRET_BYTES))


def new_session_id() -> str:
    # An id is typed on command lines (`anchor-orm revoke ID`): one starting with "-"
    # would read as an option, so those (1 in 32) are drawn again.
    while True:
        session_id = secrets.token_urlsafe(SESSION_ID_BYTES)
        if session_id[0] != "-":
            return session_id


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    # Constant-time: the time taken must not tell an attacker how much of the hash matched.
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def split_token(token: str) -> TokenParts | None:
    session_id, dot, secret = token.partition(".")
    if not dot or not session_id or not secret or "." in secret:
        return None
    if not (_is_urlsafe(session_id) and _is_urlsafe(secret)):
        return None
    return TokenParts(session_id, secret)


def _is_urlsafe(text: str) -> bool:
    return text.isascii() and all(c.isalnum() or c in "-_" for c in text)


class TokenSigner:
    """Signs tokens with the newest key; verifies with any key still listed.

    Keys are listed oldest first, newest last (itsdangerous's order): to rotate, append
    the new key, and remove the old one once its cookies have been re-signed.
    """

    def __init__(self, secret_keys: Sequence[str]) -> None:
        if secret_keys is None:
            raise ConfigurationError("secret_keys is None: give a list with at least one random key.")
        if isinstance(secret_keys, str):
            raise ConfigurationError(
                "secret_keys takes a list of keys, oldest first: write secret_keys=[key]."
            )
        keys = list(secret_keys)
        if not keys:
            raise ConfigurationError(
                "secret_keys is empty: give at least one random key, for example "
                "secret_keys=[os.environ['SESSION_SECRET']] with a value from "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`."
            )
        for key in keys:
            if not isinstance(key, str | bytes):
                raise ConfigurationError(
                    f"secret_keys holds {key!r}; each key must be a string, for example "
                    "os.environ['SESSION_SECRET'] (is that variable set?)."
                )
            if len(key.strip()) < MIN_SIGNING_KEY_LENGTH:
                raise ConfigurationError(
                    f"a secret key is {len(key)} characters long; anchor_orm needs at least "
                    f"{MIN_SIGNING_KEY_LENGTH}. Make one with "
                    "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`."
                )
        self._all_keys = Signer(keys, salt=SIGNING_SALT, digest_method=hashlib.sha256)
        self._newest_key = Signer(keys[-1], salt=SIGNING_SALT, digest_method=hashlib.sha256)

    def sign(self, token: str) -> str:
        return self._newest_key.sign(token).decode("ascii")

    def unsign(self, signed: str) -> tuple[str, bool] | None:
        """The token and whether it was signed with the newest key; None when forged."""
        if not signed or len(signed) > MAX_SIGNED_TOKEN_LENGTH or not signed.isascii():
            return None
        try:
            return self._newest_key.unsign(signed).decode("ascii"), True
        except BadSignature:
            pass
        try:
            return self._all_keys.unsign(signed).decode("ascii"), False
        except BadSignature:
            return None
