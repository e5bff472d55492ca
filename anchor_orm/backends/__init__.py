"""Backends of the fastapi-anchor API: where session data is stored."""

from anchor_orm.backends.session_backend import BackendError, SessionBackend

__all__ = ["BackendError", "SessionBackend"]
