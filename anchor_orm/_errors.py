"""The library's exceptions."""


class AnchorError(Exception):
    """Base class of anchor_orm's errors."""


class ConfigurationError(AnchorError, ValueError):
    """A setting that cannot work; the message names the fix."""


class SessionStoreUnavailable(AnchorError):
    """The database could not be reached while reading or writing sessions."""


class SessionConflict(AnchorError):
    """Another request rotated or revoked this session first; retry with the new cookie."""
