"""Carrying the signed token: read it from a request, write or clear the cookie."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from anchor_orm._errors import ConfigurationError

SameSite = Literal["lax", "strict", "none"]
_SAMESITE_HEADER_VALUE = {"lax": "Lax", "strict": "Strict", "none": "None"}
# Browsers cap a cookie near 4096 bytes; ours is about 120, anything far larger is junk.
MAX_CREDENTIAL_LENGTH = 4096
PENDING_KEY = "anchor_orm.pending"


@dataclass(frozen=True, slots=True)
class CookieSettings:
    """The session cookie. The defaults are the safe ones: change them only with a reason.

    ``secure=False`` is for plain-http development only; browsers treat
    http://localhost as secure, so even local development rarely needs it.
    """

    name: str = "anchor_session"
    secure: bool = True
    samesite: SameSite = "lax"
    path: str = "/"
    domain: str | None = None

    def __post_init__(self) -> None:
        if not _is_token(self.name):
            raise ConfigurationError(
                f"cookie name {self.name!r} is not a valid cookie name: use letters, digits and -_."
            )
        for attribute in ("path", "domain"):
            value = getattr(self, attribute)
            if value is not None and not _is_attribute_value(value):
                raise ConfigurationError(
                    f"cookie {attribute} {value!r} holds a character that would split the "
                    "Set-Cookie header (;, a control character or a space): remove it."
                )
        if not isinstance(self.samesite, str):
            raise ConfigurationError(
                f"samesite={self.samesite!r}: use 'lax' (the default), 'strict' or 'none'."
            )
        samesite = self.samesite.lower()
        if samesite not in _SAMESITE_HEADER_VALUE:
            raise ConfigurationError(
                f"samesite={self.samesite!r}: use 'lax' (the default), 'strict' or 'none'."
            )
        object.__setattr__(self, "samesite", samesite)
        if samesite == "none" and not self.secure:
            raise ConfigurationError(
                "samesite='none' without secure=True is rejected by browsers: set secure=True "
                "or use samesite='lax'."
            )
        prefix = self.name.lower()
        if prefix.startswith("__host-") and (not self.secure or self.path != "/" or self.domain):
            raise ConfigurationError(
                "a __Host- cookie needs secure=True, path='/' and no domain, or browsers "
                "drop it: fix those settings or drop the __Host- prefix."
            )
        if prefix.startswith("__secure-") and not self.secure:
            raise ConfigurationError("a __Secure- cookie needs secure=True: set it, or drop the prefix.")
        if not self.path.startswith("/"):
            raise ConfigurationError(f"cookie path {self.path!r} must start with '/'.")

    def set_cookie_header(self, value: str, max_age_seconds: int | None) -> str:
        """A Set-Cookie value; ``max_age_seconds=None`` makes a browser-session cookie."""
        parts = [f"{self.name}={value}"]
        if max_age_seconds is not None:
            parts.append(f"Max-Age={max(max_age_seconds, 0)}")
        return "; ".join(parts + self._attributes())

    def clear_cookie_header(self) -> str:
        # The same attributes as when it was set, or the browser keeps the original.
        expired = "expires=Thu, 01 Jan 1970 00:00:00 GMT"
        return "; ".join([f'{self.name}=""', "Max-Age=0", expired, *self._attributes()])

    def _attributes(self) -> list[str]:
        attributes = [f"Path={self.path}"]
        if self.domain:
            attributes.append(f"Domain={self.domain}")
        if self.secure:
            attributes.append("Secure")
        attributes.append("HttpOnly")
        attributes.append(f"SameSite={_SAMESITE_HEADER_VALUE[self.samesite]}")
        return attributes


# RFC 6265 cookie-name: a token, printable ASCII without separators.
_COOKIE_NAME_SEPARATORS = frozenset('()<>@,;:\\"/[]?={} \t')


def _is_token(text: str) -> bool:
    return bool(text) and all(33 <= ord(c) < 127 and c not in _COOKIE_NAME_SEPARATORS for c in text)


def _is_attribute_value(text: str) -> bool:
    return bool(text) and all(32 < ord(c) < 127 and c != ";" for c in text)


@dataclass(frozen=True, slots=True)
class Credential:
    value: str
    # Bearer requests cannot be forged cross-site (a browser never adds the header on
    # its own), so the CSRF guard skips them.
    via_bearer: bool


def read_credential(connection: HTTPConnection, cookie_name: str, *, bearer: bool) -> Credential | None:
    """The signed token the request carries (Authorization header first), unverified."""
    authorization = connection.headers.get("authorization") if bearer else None
    if authorization:
        scheme, _, value = authorization.partition(" ")
        # Another scheme (say Basic, from a staging proxy) is not ours: use the cookie.
        if scheme.lower() == "bearer":
            return Credential(value.strip()[: MAX_CREDENTIAL_LENGTH + 1], True)
    cookie_value = connection.cookies.get(cookie_name)
    if cookie_value is None:
        return None
    return Credential(cookie_value.strip('"')[: MAX_CREDENTIAL_LENGTH + 1], False)


@dataclass(slots=True)
class PendingCookie:
    """What this request will do to the cookie, applied by AnchorMiddleware."""

    set_value: str | None = None
    max_age_seconds: int | None = None
    clear: bool = False
    # A cookie for a new session is sent only once its transaction committed.
    awaiting_commit: bool = False
    # The session a dependency validated or a login created in this request.
    current_session: Any = None
    # The response depends on the cookie: no shared cache may keep it for another user.
    cookie_authenticated: bool = False
    # Set once a 500 replaced the response: a commit arriving after it must fail.
    refuse_late_commit: bool = False

    def set(self, value: str, expires_at: datetime | None, now: datetime) -> None:
        self.set_value = value
        self.clear = False
        self.max_age_seconds = None if expires_at is None else int((expires_at - now).total_seconds())

    def confirm(self) -> None:
        self.awaiting_commit = False

    def cancel_set(self) -> None:
        self.set_value = None
        self.awaiting_commit = False

    def cancel_clear(self) -> None:
        self.clear = False

    def remove(self) -> None:
        self.set_value = None
        self.awaiting_commit = False
        self.clear = True


UNCOMMITTED_LOGIN_BODY = (
    b'{"detail":"anchor_orm: a new session token was issued but its transaction was not committed '
    b"before the response, so it was rolled back. Commit in the route, or declare the database "
    b'dependency with Depends(get_db, scope=\\"function\\") so it commits before the response is sent."}'
)


class AnchorMiddleware:
    """Adds the session's Set-Cookie to whatever Response the route returned.

    A route may return a RedirectResponse or a template; the cookie must still reach
    the client, so it is added here rather than on FastAPI's injected Response. Every
    response that sets the cookie is marked ``Cache-Control: no-store`` so no shared
    cache hands one user's cookie to another.
    """

    def __init__(self, app: ASGIApp, settings: CookieSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        pending = PendingCookie()
        scope[PENDING_KEY] = pending
        replaced = False

        async def send_with_cookie(message: Message) -> None:
            nonlocal replaced
            if replaced:
                if message["type"] == "http.response.body" and not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": UNCOMMITTED_LOGIN_BODY})
                return
            if message["type"] == "http.response.start":
                if pending.awaiting_commit and pending.set_value is not None:
                    # Sending this cookie would log the user in to a row that was never
                    # saved; a clear error names the fix instead, and the late commit
                    # is refused so the database agrees with what the client was told.
                    replaced = True
                    pending.refuse_late_commit = True
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 500,
                            "headers": [
                                (b"content-type", b"application/json"),
                                (b"cache-control", b"no-store"),
                            ],
                        }
                    )
                    return
                headers = MutableHeaders(scope=message)
                header_value = None
                if pending.set_value is not None:
                    header_value = self.settings.set_cookie_header(pending.set_value, pending.max_age_seconds)
                elif pending.clear:
                    header_value = self.settings.clear_cookie_header()
                if header_value is not None:
                    headers.append("set-cookie", header_value)
                    headers["cache-control"] = "no-store"
                    _add_vary_cookie(headers)
                elif pending.cookie_authenticated:
                    if "cache-control" not in headers:
                        headers["cache-control"] = "private"
                    _add_vary_cookie(headers)
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def _add_vary_cookie(headers: MutableHeaders) -> None:
    vary = headers.get("vary")
    if vary is None:
        headers["vary"] = "Cookie"
    elif "cookie" not in vary.lower():
        headers["vary"] = f"{vary}, Cookie"
