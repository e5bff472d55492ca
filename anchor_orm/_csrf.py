"""Cross-site request forgery guard for cookie-authenticated writes.

A browser attaches the session cookie to a cross-site form post by itself; it never
forges Sec-Fetch-Site or Origin. So an unsafe request is accepted only when one of
them proves it came from our own origin (or a trusted one). Requests that prove
nothing are refused: every browser of the last years sends at least Origin on a POST.
"""

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

from anchor_orm._errors import ConfigurationError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def normalize_origin(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


class CSRFGuard:
    def __init__(self, trusted_origins: Iterable[str] = ()) -> None:
        if isinstance(trusted_origins, str):
            raise ConfigurationError(
                "trusted_origins takes a list: trusted_origins=['https://app.example.com']."
            )
        self.trusted_origins = frozenset(_checked_origin(origin) for origin in trusted_origins)

    def refusal(self, connection: HTTPConnection, method: str) -> str | None:
        """Why this request must be refused, or None when it may go on."""
        if method.upper() in SAFE_METHODS:
            return None
        fetch_site = connection.headers.get("sec-fetch-site")
        origin = connection.headers.get("origin")
        if fetch_site is not None:
            # "none": typed in the address bar or a bookmark; "same-origin": our own page.
            if fetch_site in ("same-origin", "none"):
                return None
            # same-site or cross-site: allowed only from an origin we trust.
            if origin is not None and normalize_origin(origin) in self.trusted_origins:
                return None
            return f"cross-site request refused (Sec-Fetch-Site: {fetch_site})"
        if origin is None:
            return "request refused: no Origin or Sec-Fetch-Site header proves it came from this site"
        normalized = normalize_origin(origin)
        if normalized == self_origin(connection) or normalized in self.trusted_origins:
            return None
        return "cross-origin request refused: Origin is not trusted"


def _checked_origin(origin: str) -> str:
    # An Origin header is exactly scheme://host[:port]; anything else would never match.
    parsed = urlsplit(origin.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.path not in ("", "/"):
        raise ConfigurationError(
            f"trusted origin {origin!r} is not an origin: write scheme://host[:port], for example "
            "'https://app.example.com' (no path, no wildcard)."
        )
    if parsed.query or parsed.fragment or "*" in parsed.netloc:
        raise ConfigurationError(f"trusted origin {origin!r}: no wildcard, query or fragment.")
    return normalize_origin(f"{parsed.scheme}://{parsed.netloc}")


def self_origin(connection: HTTPConnection) -> str:
    host = connection.headers.get("host", "")
    return normalize_origin(f"{connection.url.scheme}://{host}")
