"""Knowledge limits. Each can be set in settings (KNOWLEDGE_*); the defaults suit most sites."""

from __future__ import annotations

from django.conf import settings


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def max_upload_bytes() -> int:
    return _setting("KNOWLEDGE_MAX_UPLOAD_BYTES", 20 * 1024 * 1024)


def max_page_bytes() -> int:
    return _setting("KNOWLEDGE_MAX_PAGE_BYTES", 5 * 1024 * 1024)


def fetch_timeout() -> float:
    return float(_setting("KNOWLEDGE_FETCH_TIMEOUT", 20))


def fetch_deadline() -> float:
    """The time one page may take to arrive, body included: the read timeout alone lets a
    server that sends a byte every few seconds hold a sync forever."""
    return float(getattr(settings, "KNOWLEDGE_FETCH_DEADLINE", 30))


def sync_seconds() -> int:
    """The time one sync of one source may take, all pages included."""
    return _setting("KNOWLEDGE_SYNC_SECONDS", 15 * 60)


def max_pages_ceiling() -> int:
    return _setting("KNOWLEDGE_MAX_PAGES", 500)


def max_depth_ceiling() -> int:
    return _setting("KNOWLEDGE_MAX_DEPTH", 5)


def max_chunks_per_source() -> int:
    return _setting("KNOWLEDGE_MAX_CHUNKS_PER_SOURCE", 20_000)


def max_text_chars() -> int:
    """Pasted text and Q&A answers."""
    return _setting("KNOWLEDGE_MAX_TEXT_CHARS", 500_000)
