"""A small User-Agent parser: enough to tell a person which device a session is on.

It recognises the common browsers and systems and says "Unknown" otherwise; it is a
label for people, never a security decision (the header is whatever the client says).
"""

import re
from dataclasses import dataclass

# Order matters: Edge and Opera also say "Chrome", Chrome also says "Safari".
_BROWSERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Edge", re.compile(r"\bEdg(?:e|A|iOS)?/(\d+)")),
    ("Opera", re.compile(r"\b(?:OPR|OPT)/(\d+)")),
    ("Samsung Internet", re.compile(r"\bSamsungBrowser/(\d+)")),
    ("Firefox", re.compile(r"\b(?:Firefox|FxiOS)/(\d+)")),
    ("Headless Chrome", re.compile(r"\bHeadlessChrome/(\d+)")),
    ("Chromium", re.compile(r"\bChromium/(\d+)")),
    ("Chrome", re.compile(r"\b(?:Chrome|CriOS)/(\d+)")),
    ("Safari", re.compile(r"\bVersion/(\d+)[\d.]*(?: Mobile/\w+)? Safari/")),
    # Tools stay at 0.x or 1.x for years: their minor version says more.
    ("curl", re.compile(r"^curl/(\d+(?:\.\d+)?)")),
    ("HTTPX", re.compile(r"^python-httpx/(\d+(?:\.\d+)?)")),
    ("Requests", re.compile(r"^python-requests/(\d+(?:\.\d+)?)")),
)
_SCRIPTS = frozenset({"curl", "HTTPX", "Requests"})
_BOT = re.compile(r"bot\b|crawler|spider", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Device:
    browser: str  # "Firefox 133", or "Unknown browser"
    system: str  # "macOS", "iOS", ... or "Unknown system"
    kind: str  # "desktop", "mobile", "tablet", "script", "bot" or "unknown"

    @property
    def label(self) -> str:
        if self.kind == "script":
            return self.browser
        return f"{self.browser} on {self.system}"


def parse_user_agent(user_agent: str | None) -> Device:
    text = (user_agent or "").strip()
    if not text:
        return Device("Unknown browser", "Unknown system", "unknown")
    browser_name, browser = _browser(text)
    system, kind = _system(text)
    if browser_name in _SCRIPTS:
        kind = "script"
    elif _BOT.search(text):
        kind = "bot"
    return Device(browser, system, kind)


def _browser(text: str) -> tuple[str, str]:
    for name, pattern in _BROWSERS:
        found = pattern.search(text)
        if found:
            return name, f"{name} {found.group(1)}"
    return "", "Unknown browser"


def _system(text: str) -> tuple[str, str]:
    if "iPad" in text:
        return "iPadOS", "tablet"
    if "iPhone" in text or "iPod" in text:
        return "iOS", "mobile"
    if "Android" in text:
        # Android phones say "Mobile"; tablets do not.
        return "Android", "mobile" if "Mobile" in text else "tablet"
    if "Windows NT" in text or "Windows" in text:
        return "Windows", "desktop"
    if "CrOS" in text:
        return "ChromeOS", "desktop"
    if "Macintosh" in text or "Mac OS X" in text:
        return "macOS", "desktop"
    if "Linux" in text or "X11" in text:
        return "Linux", "desktop"
    return "Unknown system", "unknown"
