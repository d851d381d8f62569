"""Parley: AI chat widgets backed by open-weights Llama models."""

from .celery import app as celery_app

__all__ = ["celery_app"]
