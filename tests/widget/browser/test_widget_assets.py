"""The widget's shipped files: byte budgets, the loader's build, translations complete."""

from __future__ import annotations

import hashlib
import re

from bench.widget_size.sizes import (
    FRAME_BUDGET,
    LOADER_BUDGET,
    STATIC,
    frame_files,
    measure,
    render_frame_page,
    report,
)

LOCALES = ("en", "fr", "es", "de", "ar")


def test_loader_and_frame_fit_their_byte_budgets() -> None:
    rows = measure()
    print("\n" + report(rows))  # the figures, in the test log (pytest -s)
    loader = next(r for r in rows if r.name == "loader.min.js (/widget.js)")
    assert loader.gzip <= LOADER_BUDGET, loader
    frame_total = sum(r.gzip for r in rows if r.in_frame)
    assert frame_total <= FRAME_BUDGET, frame_total
    # Everything the frame page references is counted (CSS and scripts; it loads no fonts).
    page = render_frame_page()
    referenced = set(re.findall(r'(?:src|href)="/static/widget/([^"]+)"', page))
    assert referenced == {path.name for path in frame_files()}


def test_loader_build_matches_its_source() -> None:
    """`make widget-assets` rebuilds loader.min.js; a stale build would ship old code."""
    source = (STATIC / "loader.js").read_bytes()
    built = (STATIC / "loader.min.js").read_text()
    expected = hashlib.sha256(source).hexdigest()[:16]
    assert built.startswith(f"/*! Parley loader, built from loader.js sha256:{expected} */"), (
        "widget/static/widget/loader.min.js is stale: run `make widget-assets`"
    )


def catalogue() -> dict[str, dict[str, str]]:
    text = (STATIC / "i18n.js").read_text()
    blocks = re.split(r"^  (\w\w): \{$", text, flags=re.M)[1:]
    return {
        code: dict(re.findall(r"^    (\w+): '((?:[^'\\]|\\.)*)',?$", body, flags=re.M))
        for code, body in zip(blocks[::2], blocks[1::2], strict=True)
    }


def test_every_frame_string_is_translated_in_every_locale() -> None:
    strings = catalogue()
    assert set(strings) == set(LOCALES)
    english = strings["en"]
    assert len(english) > 40
    for code in LOCALES:
        assert set(strings[code]) == set(english), code
        for key, text in strings[code].items():
            assert text.strip(), (code, key)
            # Placeholders survive translation.
            assert set(re.findall(r"\{\w+\}", text)) == set(re.findall(r"\{\w+\}", english[key]))
    # Every key the frame uses exists.
    script = (STATIC / "frame.js").read_text()
    used = set(re.findall(r"\bt\('(\w+)'", script))
    used |= set(re.findall(r"\b(?:showBanner|halt)\('(\w+)'", script))
    used |= set(re.findall(r'data-i18n(?:-label|-placeholder)?="(\w+)"', render_frame_page()))
    assert used - set(english) == set()
    assert {"offline", "rateLimited", "assistantOffline", "notAllowed"} <= used


def test_loader_labels_the_launcher_in_every_locale() -> None:
    loader = (STATIC / "loader.js").read_text()
    for code in LOCALES:
        assert re.search(rf"^    {code}: \['[^']+', '[^']+'\]", loader, flags=re.M), code
