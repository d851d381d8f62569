"""The dashboard's one renderer for stored text (chatbot/lib/render.py)."""

from __future__ import annotations

import pytest

from chatbot.lib.render import render_markdown


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("**bold** and *em*", "<p><strong>bold</strong> and <em>em</em></p>\n"),
        ("<script>alert(1)</script>", "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n"),
        ("[x](javascript:alert(1))", "<p>[x](javascript:alert(1))</p>\n"),
        (
            '[docs](https://example.com "Title")',
            '<p><a href="https://example.com" rel="noopener noreferrer">docs</a></p>\n',
        ),
        ("[mail](mailto:a@b.c)", '<p><a rel="noopener noreferrer">mail</a></p>\n'),
        ("line one\nline two", "<p>line one<br>\nline two</p>\n"),
        ("```\n<b>x</b>\n```", "<pre><code>&lt;b&gt;x&lt;/b&gt;\n</code></pre>\n"),
    ],
)
def test_markdown_is_rendered_through_the_allowlist(text: str, html: str) -> None:
    assert str(render_markdown(text)) == html


def test_no_image_ever_renders() -> None:
    assert "<img" not in render_markdown("![pixel](https://tracker.example/p.png)")
    assert "<img" not in render_markdown('<img src="https://tracker.example/p.png">')
