"""Gzip and brotli sizes of every file the widget ships, against its budgets.

Compressed the way whitenoise compresses static files at collectstatic (gzip level 9, brotli
at its default quality 11), which is what browsers download.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import brotli

STATIC = Path(__file__).resolve().parents[2] / "widget" / "static" / "widget"
# /widget.js, on every page view of every host site.
LOADER_BUDGET = 3_000
# Everything the frame loads when opened: its HTML, CSS and scripts.
FRAME_BUDGET = 25 * 1024
FRAME_ASSETS = ("frame.css", "i18n.js", "frame.js")

# A typical bot for the frame page's HTML (its config is embedded in the page).
SAMPLE_CONFIG = {
    "bot": {
        "key": "pk_" + "x" * 24,
        "name": "Acme Bikes assistant",
        "title": "Chat with Acme Bikes",
        "greeting": "Hi! Ask me about repairs, rentals and opening hours.",
        "suggested_questions": [
            "Are you open on Sunday?",
            "How much is a full service?",
            "Can I rent an e-bike for a week?",
        ],
        "locale": "en",
        "appearance": {
            "accent": "#2f4f3a",
            "position": "right",
            "theme": "auto",
            "launcher": "chat",
            "avatar_url": "",
        },
        "accepts_images": True,
        "status": "ok",
    },
    "site": "https://parley.example",
    "preview": False,
    "urls": {
        "session": "/widget/api/session",
        "send": "/widget/api/send",
        "events": "/widget/api/events",
        "upload": "/widget/api/attachments",
        "ws": "wss://parley.example/ws/widget/pk_" + "x" * 24,
    },
}


@dataclass(frozen=True)
class Row:
    name: str
    raw: int
    gzip: int
    brotli: int
    in_frame: bool


def render_frame_page() -> str:
    """The frame page's HTML for a typical bot (needs Django set up)."""
    from django.template.loader import render_to_string

    return render_to_string("widget/frame.html", {"config": SAMPLE_CONFIG})


def frame_files() -> list[Path]:
    return [STATIC / name for name in FRAME_ASSETS]


def sizes(name: str, data: bytes, in_frame: bool) -> Row:
    return Row(
        name,
        len(data),
        len(gzip.compress(data, compresslevel=9, mtime=0)),
        len(brotli.compress(data)),
        in_frame,
    )


def measure() -> list[Row]:
    rows = [sizes("loader.min.js (/widget.js)", (STATIC / "loader.min.js").read_bytes(), False)]
    rows.append(sizes("frame page (HTML)", render_frame_page().encode(), True))
    rows.extend(sizes(path.name, path.read_bytes(), True) for path in frame_files())
    return rows


def report(rows: list[Row]) -> str:
    lines = [f"{'file':<30} {'raw':>8} {'gzip':>8} {'brotli':>8}"]
    lines += [f"{r.name:<30} {r.raw:>8} {r.gzip:>8} {r.brotli:>8}" for r in rows]
    loader = rows[0]
    frame = [r for r in rows if r.in_frame]
    total_gzip = sum(r.gzip for r in frame)
    total_brotli = sum(r.brotli for r in frame)
    lines.append(
        f"{'frame, everything on open':<30} {sum(r.raw for r in frame):>8} "
        f"{total_gzip:>8} {total_brotli:>8}"
    )
    lines.append(
        f"budget /widget.js: {loader.gzip} of {LOADER_BUDGET} bytes gzip "
        f"({'ok' if loader.gzip <= LOADER_BUDGET else 'OVER'}); "
        f"frame: {total_gzip} of {FRAME_BUDGET} bytes gzip "
        f"({'ok' if total_gzip <= FRAME_BUDGET else 'OVER'})"
    )
    return "\n".join(lines)
