"""The frame's allowlist markdown renderer, run in Chromium inside the real frame page."""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import Shop, open_widget

pytestmark = pytest.mark.browser

RENDER = """(source) => {
  const box = document.createElement('div');
  box.append(parleyMarkdown(source));
  return box.innerHTML;
}"""

CASES = [
    ("Hello **world** and *you*", "<p>Hello <strong>world</strong> and <em>you</em></p>"),
    ("__strong__ and _em_", "<p><strong>strong</strong> and <em>em</em></p>"),
    ("snake_case_name stays", "<p>snake_case_name stays</p>"),
    ("2 * 3 * 4 = 24", "<p>2 * 3 * 4 = 24</p>"),
    ("Use `rm -rf <dir>` carefully", "<p>Use <code>rm -rf &lt;dir&gt;</code> carefully</p>"),
    ("line one\nline two", "<p>line one<br>line two</p>"),
    ("para one\n\npara two", "<p>para one</p><p>para two</p>"),
    (
        "- a\n- b\n  - nested\n- c",
        "<ul><li>a</li><li>b<ul><li>nested</li></ul></li><li>c</li></ul>",
    ),
    ("1. one\n2. two", "<ol><li>one</li><li>two</li></ol>"),
    ("3. three\n4. four", '<ol start="3"><li>three</li><li>four</li></ol>'),
    ("Steps:\n- first\n- second", "<p>Steps:</p><ul><li>first</li><li>second</li></ul>"),
    (
        "```py\nprint('<b>')\n\nx = 1\n```",
        "<pre><code data-lang=\"py\">print('&lt;b&gt;')\n\nx = 1</code></pre>",
    ),
    ("```\nunclosed fence", "<pre><code>unclosed fence</code></pre>"),
    ("# Title", '<p class="h"><strong>Title</strong></p>'),
    ("> quoted **text**", "<blockquote><p>quoted <strong>text</strong></p></blockquote>"),
    ("a\n\n---\n\nb", "<p>a</p><hr><p>b</p>"),
    ("~~old~~ new", "<p><del>old</del> new</p>"),
    ("![a cat](https://example.com/cat.png)", '<p><span class="img-alt">[a cat]</span></p>'),
    ("<b>hi</b> &amp; <i>", "<p>&lt;b&gt;hi&lt;/b&gt; &amp; &lt;i&gt;</p>"),
    # Character references read as CommonMark does (text only, never markup); not in code.
    ("&lt;script&gt; &quot;x&quot; &#169; &#x41;", '<p>&lt;script&gt; "x" © A</p>'),
    ("&bogus; &#0; &#xD800; `&lt;`", "<p>&amp;bogus; \ufffd \ufffd <code>&amp;lt;</code></p>"),
    ("**&lt;b&gt;**", "<p><strong>&lt;b&gt;</strong></p>"),
    ("**unclosed", "<p>**unclosed</p>"),
    ("[no url]", "<p>[no url]</p>"),
    ("[x](javascript:alert(1))", "<p>x)</p>"),
    ("[x](/relative)", "<p>x</p>"),
]


@pytest.fixture
def frame(page: Any, shop: Shop) -> Any:
    return open_widget(page, shop.url)


def test_markdown_renders_the_allowed_constructs_and_escapes_the_rest(frame: Any) -> None:
    for source, expected in CASES:
        assert frame.evaluate(RENDER, source) == expected, source


def test_links_are_http_only_and_open_safely(frame: Any) -> None:
    links = frame.evaluate(
        """() => {
          const box = document.createElement('div');
          box.append(parleyMarkdown(
            '[docs](https://example.com/a_b) see https://example.com/x. or ' +
            '**[bold link](http://example.org)** [bad](data:text/html,x) [mail](mailto:a@b.c)'));
          return [...box.querySelectorAll('a')].map((a) => ({
            href: a.getAttribute('href'), rel: a.rel, target: a.target,
            referrer: a.referrerPolicy, text: a.textContent }));
        }"""
    )
    assert [(link["href"], link["text"]) for link in links] == [
        ("https://example.com/a_b", "docs"),
        ("https://example.com/x", "https://example.com/x"),
        ("http://example.org/", "bold link"),
    ]
    for link in links:
        assert link["rel"] == "noopener noreferrer"
        assert link["target"] == "_blank"
        assert link["referrer"] == "no-referrer"


def test_hostile_shapes_render_as_text_in_reasonable_time(frame: Any) -> None:
    # Unbalanced delimiters by the thousand: bounded spans keep the regex from running away.
    for source in ["*" * 5000 + "a", "[" * 3000 + "](", "_a" * 3000, "`" * 4000, "> " * 2000]:
        html = frame.evaluate(RENDER, source)
        assert "<script" not in html
        assert len(html) >= 1
    # Deep nesting is capped rather than recursing without end.
    nested = frame.evaluate(RENDER, "\n".join("  " * i + "- x" for i in range(200)))
    assert nested.count("<ul>") <= 6
