"""Frontends of the fastapi-anchor API: where a request carries its session id."""
