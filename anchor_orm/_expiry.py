"""The two clocks (idle and absolute) and the touch rule, as pure functions."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from anchor_orm._errors import ConfigurationError

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ExpiryPolicy:
    """How long sessions live.

    - idle_timeout: a session unused this long expires (rolling).
    - absolute_lifetime: no session outlives created_at + this, however busy.
    - browser_session_idle_timeout: the idle timeout of a "remember me: no" login,
      whose cookie also dies with the browser.
    - touch_interval: last_seen_at and expires_at are written at most once per this
      interval per session, so a busy session costs one write an interval, not one a
      request. An idle expiry is therefore exact to within this interval.
    """

    idle_timeout: timedelta = timedelta(days=14)
    absolute_lifetime: timedelta = timedelta(days=90)
    browser_session_idle_timeout: timedelta = timedelta(hours=12)
    touch_interval: timedelta = timedelta(minutes=10)

    def __post_init__(self) -> None:
        for name in ("idle_timeout", "absolute_lifetime", "browser_session_idle_timeout"):
            if getattr(self, name) <= timedelta(0):
                raise ConfigurationError(f"{name} must be positive, got {getattr(self, name)}.")
        if self.touch_interval < timedelta(0):
            raise ConfigurationError("touch_interval must be zero or positive.")
        shortest_idle = min(self.idle_timeout, self.browser_session_idle_timeout)
        if self.touch_interval >= shortest_idle:
            raise ConfigurationError(
                f"touch_interval ({self.touch_interval}) must be shorter than the idle "
                f"timeouts ({shortest_idle}), or busy sessions would expire while in use: "
                "lower touch_interval."
            )
        if self.absolute_lifetime < self.idle_timeout:
            raise ConfigurationError(
                f"absolute_lifetime ({self.absolute_lifetime}) is shorter than idle_timeout "
                f"({self.idle_timeout}): raise absolute_lifetime or lower idle_timeout."
            )

    def idle_for(self, remember: bool) -> timedelta:
        return self.idle_timeout if remember else self.browser_session_idle_timeout

    def first_expiry(self, now: datetime, remember: bool) -> tuple[datetime, datetime]:
        """(expires_at, absolute_expires_at) of a session created at ``now``."""
        absolute_expires_at = now + self.absolute_lifetime
        return min(now + self.idle_for(remember), absolute_expires_at), absolute_expires_at

    def extended_expiry(self, now: datetime, remember: bool, absolute_expires_at: datetime) -> datetime:
        # The idle clock rolls forward but never past the absolute cap.
        return min(now + self.idle_for(remember), absolute_expires_at)

    def touch_due(self, last_seen_at: datetime, now: datetime) -> bool:
        return now - last_seen_at >= self.touch_interval

    def touch_threshold(self, now: datetime) -> datetime:
        """Rows last seen before this instant are due a touch."""
        return now - self.touch_interval


def is_live(expires_at: datetime, absolute_expires_at: datetime, now: datetime) -> bool:
    return now < expires_at and now < absolute_expires_at
