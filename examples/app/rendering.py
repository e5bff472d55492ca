"""Templates, the date filters they use, and the headers every page gets."""

from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from anchor_orm import utc_now

TEMPLATES_DIR = Path(__file__).parent / "templates"

# Pages with buttons that sign people out must not be framed by other sites
# (clickjacking); nothing here loads scripts or anything from elsewhere.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}

# Messages shown after a redirect (?notice=...), so no user text is ever echoed back.
NOTICES = {
    "signed-up": "Welcome! Your account is ready.",
    "revoked": "That session is signed out.",
    "already-gone": "That session was already signed out.",
    "others-signed-out": "Signed out of {count} other session(s).",
    "password-changed": "Password changed. {count} other session(s) signed out; this one stays.",
    "signed-out": "You are signed out.",
    "signed-out-everywhere": "You are signed out on every device.",
    "session-ended": "Your session ended. Please sign in again.",
    "account-deleted": "Your account and all its sessions are deleted.",
}


def make_templates(clock: Any = utc_now) -> Jinja2Templates:
    templates = Jinja2Templates(directory=TEMPLATES_DIR)
    templates.env.filters["ago"] = lambda moment: time_ago(moment, clock())
    templates.env.filters["utc"] = lambda moment: moment.strftime("%Y-%m-%d %H:%M UTC")
    return templates


def time_ago(moment: datetime, now: datetime) -> str:
    elapsed = now - moment
    if elapsed < timedelta(minutes=1):
        return "just now"
    for unit, size in (
        ("day", timedelta(days=1)),
        ("hour", timedelta(hours=1)),
        ("minute", timedelta(minutes=1)),
    ):
        if elapsed >= size:
            count = int(elapsed / size)
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"


def notice_text(code: str | None, count: int | None) -> str | None:
    template = NOTICES.get(code or "")
    return template.format(count=count or 0) if template else None


def render(
    templates: Jinja2Templates,
    request: Request,
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> Response:
    return templates.TemplateResponse(
        request, name, dict(context or {}), status_code=status_code, headers=PAGE_HEADERS
    )


def safe_next(target: str | None) -> str:
    """A local path to go to after login; anything else (another site) becomes "/"."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(character) < 32 for character in target):
        return "/"
    return target


def redirect(path: str, **query: str | int | None) -> RedirectResponse:
    """A 303 ("see other"): after a form post the browser follows it with a GET."""
    params = {key: value for key, value in query.items() if value is not None}
    return RedirectResponse(f"{path}?{urlencode(params)}" if params else path, status_code=303)
