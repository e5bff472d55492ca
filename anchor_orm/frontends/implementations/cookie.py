"""The signed session cookie of the fastapi-anchor API.

The cookie's value is the session UUID signed exactly as fastapi-anchor 0.1.1 signed it
(itsdangerous URLSafeTimedSerializer, salted with the cookie name), so cookies issued
before the switch to anchor_orm stay valid.
"""

from enum import StrEnum
from typing import Any, Self
from uuid import UUID

from fastapi import HTTPException
from fastapi.openapi.models import APIKey, APIKeyIn
from fastapi.security.base import SecurityBase
from itsdangerous import BadData, URLSafeTimedSerializer
from pydantic import BaseModel, field_validator, model_validator
from starlette.requests import Request
from starlette.responses import Response

from anchor_orm._errors import ConfigurationError
from anchor_orm.frontends.session_frontend import FrontendError, SessionFrontend

FOURTEEN_DAYS_SECONDS = 14 * 24 * 60 * 60
# Browsers cap a cookie near 4096 bytes; ours is about 80, anything larger is junk
# and is refused before it costs an HMAC.
MAX_COOKIE_VALUE_LENGTH = 4096
_COOKIE_NAME_FORBIDDEN = set(' ;,="\t\r\n()<>@:\\/[]?{}')


class SameSiteEnum(StrEnum):
    lax = "lax"
    strict = "strict"
    none = "none"

    @property
    def header_value(self) -> str:
        # Browsers expect "Lax", "Strict" or "None"; 0.1.1 wrote "SameSiteEnum.lax",
        # which they ignore.
        return self.value.capitalize()


class CookieParameters(BaseModel):
    """The cookie's attributes, as in fastapi-anchor 0.1.1.

    ``secure`` defaults to False only because 0.1.1 did, so existing apps keep their
    behaviour: set ``secure=True`` in production (browsers treat http://localhost as
    secure, so even local development rarely needs False). The core API's
    ``CookieSettings`` is Secure by default.
    """

    max_age: int = FOURTEEN_DAYS_SECONDS
    path: str = "/"
    domain: str | None = None
    secure: bool = False
    httponly: bool = True
    samesite: SameSiteEnum = SameSiteEnum.lax

    @field_validator("samesite", mode="before")
    @classmethod
    def _samesite_any_case(cls, value: Any) -> Any:
        # "Lax" as written in a Set-Cookie header is accepted as well as "lax".
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _browsers_accept_it(self) -> Self:
        if self.max_age < 1:
            raise ConfigurationError(
                f"max_age={self.max_age}: give the cookie lifetime in seconds, at least 1."
            )
        if not self.path.startswith("/"):
            raise ConfigurationError(f"path={self.path!r} must start with '/'.")
        if self.samesite is SameSiteEnum.none and not self.secure:
            raise ConfigurationError(
                "samesite='none' without secure=True is rejected by browsers: set secure=True "
                "or use samesite='lax'."
            )
        return self


class SessionCookie(SecurityBase, SessionFrontend[UUID]):
    """Carries the session UUID in a signed cookie; a FastAPI dependency.

    As a dependency it gives the request's session UUID. With ``auto_error=True`` a
    missing or invalid cookie is a 401; with ``auto_error=False`` the route gets None
    (never an error object in place of an id).
    """

    def __init__(
        self,
        *,
        cookie_name: str,
        identifier: str,
        secret_key: str,
        cookie_params: CookieParameters,
        scheme_name: str | None = None,
        auto_error: bool = False,
    ) -> None:
        _check_cookie_name(cookie_name, cookie_params)
        if not secret_key:
            raise ConfigurationError(
                "secret_key is empty, so anyone could sign a session cookie: give a random key, "
                "for example from `python -c 'import secrets; print(secrets.token_urlsafe(32))'`."
            )
        self.model = APIKey(**{"in": APIKeyIn.cookie}, name=cookie_name)
        self._cookie_name = cookie_name
        self._identifier = identifier
        self.scheme_name = scheme_name or self.__class__.__name__
        self.auto_error = auto_error
        self.signer = URLSafeTimedSerializer(secret_key, salt=cookie_name)
        self.cookie_params = cookie_params.model_copy(deep=True)

    @property
    def identifier(self) -> str:
        return self._identifier

    @property
    def cookie_name(self) -> str:
        return self._cookie_name

    def __call__(self, request: Request) -> UUID | None:
        signed_session_id = request.cookies.get(self.cookie_name)
        if not signed_session_id:
            self._refuse(
                request, FrontendError("No session cookie attached to request"), "No session provided"
            )
            return None
        session_id = self._unsign(signed_session_id)
        if session_id is None:
            self._refuse(
                request, FrontendError("Session cookie has invalid signature"), "Invalid session provided"
            )
            return None
        self.attach_id_state(request, session_id)
        return session_id

    def attach_to_response(self, response: Response, session_id: UUID) -> None:
        value = self.signer.dumps(session_id.hex)
        response.headers.append("set-cookie", self._set_cookie_header(value, self.cookie_params.max_age))
        # No shared cache may hand this response, and its cookie, to another user.
        response.headers["cache-control"] = "no-store"

    def delete_from_response(self, response: Response) -> None:
        # A browser only drops the cookie when Path and Domain match the ones it was set
        # with; Secure and SameSite are repeated so the clearing cookie is accepted too.
        header = self._set_cookie_header("", 0) + "; expires=Thu, 01 Jan 1970 00:00:00 GMT"
        response.headers.append("set-cookie", header)
        response.headers["cache-control"] = "no-store"

    def _unsign(self, signed_session_id: str) -> UUID | None:
        if len(signed_session_id) > MAX_COOKIE_VALUE_LENGTH:
            return None
        try:
            payload = self.signer.loads(signed_session_id, max_age=self.cookie_params.max_age)
        except BadData:  # a bad signature, one older than max_age, or an undecodable payload
            return None
        if not isinstance(payload, str):
            return None
        try:
            return UUID(hex=payload)
        except ValueError:
            return None

    def _refuse(self, request: Request, error: FrontendError, detail: str) -> None:
        self.attach_id_state(request, error)
        if self.auto_error:
            raise HTTPException(status_code=401, detail=detail)

    def _set_cookie_header(self, value: str, max_age_seconds: int) -> str:
        params = self.cookie_params
        parts = [f"{self.cookie_name}={value}", f"Max-Age={max_age_seconds}", f"Path={params.path}"]
        if params.domain:
            parts.append(f"Domain={params.domain}")
        if params.secure:
            parts.append("Secure")
        if params.httponly:
            parts.append("HttpOnly")
        parts.append(f"SameSite={params.samesite.header_value}")
        return "; ".join(parts)


def _check_cookie_name(cookie_name: str, params: CookieParameters) -> None:
    if not cookie_name or not cookie_name.isascii() or _COOKIE_NAME_FORBIDDEN & set(cookie_name):
        raise ConfigurationError(f"cookie_name={cookie_name!r} is not a valid cookie name.")
    if cookie_name.startswith("__Host-") and (not params.secure or params.path != "/" or params.domain):
        raise ConfigurationError(
            "a __Host- cookie needs secure=True, path='/' and no domain, or browsers drop it: "
            "fix those cookie_params or drop the __Host- prefix."
        )
    if cookie_name.startswith("__Secure-") and not params.secure:
        raise ConfigurationError("a __Secure- cookie needs secure=True: set it, or drop the prefix.")
