"""Webhook tests use the API personas' keys."""

from tests.api.conftest import api_for  # noqa: F401
