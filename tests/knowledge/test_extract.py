"""Text extraction for each file type, decided by content, with clear refusals."""

from __future__ import annotations

import io
import zipfile

import pytest

from chatbot.knowledge.extract import ExtractionError, extract, extract_html, sniff_type

from .documents import make_docx, make_pdf


def test_it_reads_plain_text_in_utf8_and_windows_1252() -> None:
    assert extract(
        "Crème brûlée\r\n\r\n\r\nis   sweet".encode(), "txt", fallback_title="a"
    ).text == ("Crème brûlée\n\nis sweet")
    assert extract("Café".encode("cp1252"), "txt", fallback_title="a").text == "Café"


def test_it_reads_markdown_with_its_heading_as_title() -> None:
    source = b"# Opening hours\n\nWe open at **9am**. See [the map](https://x.test/map).\n"
    result = extract(source, "md", fallback_title="hours.md")
    assert result.title == "Opening hours"
    assert "We open at 9am. See the map." in result.text
    assert "https://x.test" not in result.text


def test_it_reads_html_main_content_without_scripts_or_navigation() -> None:
    html = b"""<!doctype html><html><head><title>Returns | Shop</title>
    <script>var secret = 1;</script></head><body><nav>Home Shop Cart</nav>
    <main><h1>Returns</h1><p>Return any item within <b>30 days</b>.</p>
    <ul><li>Keep the receipt</li><li>Use the original box</li></ul></main>
    <footer>Copyright</footer></body></html>"""
    page = extract_html(html, base_url="https://shop.test/returns")
    assert page.title == "Returns | Shop"
    assert "Return any item within 30 days." in page.text
    assert "Keep the receipt\n\nUse the original box" in page.text
    for absent in ("secret", "Home Shop Cart", "Copyright"):
        assert absent not in page.text


def test_it_collects_links_and_honours_meta_robots() -> None:
    html = b"""<html><head><meta name="robots" content="noindex"></head><body>
    <a href="/a#top">A</a><a href="b.html">B</a><a href="mailto:x@y.z">mail</a>
    <a href="/c" rel="nofollow">C</a></body></html>"""
    page = extract_html(html, base_url="https://shop.test/dir/page")
    assert page.noindex and not page.nofollow
    assert page.links == ["https://shop.test/a", "https://shop.test/dir/b.html"]
    nofollow = extract_html(
        b'<meta name="robots" content="nofollow"><a href="/a">A</a>', base_url="https://s.test/"
    )
    assert nofollow.links == []


def test_it_reads_pdf_text_and_title() -> None:
    data = make_pdf(
        [["Warranty (two years)", "covers parts and labour."], ["Page two: shipping is free."]],
        title="Warranty terms",
    )
    assert sniff_type(data, "whatever.bin") == "pdf"
    result = extract(data, "pdf", fallback_title="w.pdf")
    assert result.title == "Warranty terms"
    assert "Warranty (two years)" in result.text
    assert "shipping is free" in result.text


def test_it_reads_docx_paragraphs_and_tables() -> None:
    data = make_docx(
        ["Our shop is in Lyon.", "Parking is behind the building."],
        heading="Visiting us",
        table=[["Day", "Hours"], ["Saturday", "10-16"]],
    )
    assert sniff_type(data, "visit.docx") == "docx"
    result = extract(data, "docx", fallback_title="visit.docx")
    assert result.title == "Visiting us"
    assert "Parking is behind the building." in result.text
    assert "Saturday | 10-16" in result.text


def test_it_decides_the_type_by_content_not_by_name() -> None:
    assert sniff_type(b"<!DOCTYPE html><html></html>", "notes.txt") == "html"
    assert sniff_type(b"# Title\nbody", "notes.md") == "md"
    assert sniff_type(b"just words", "notes.pdf") == "txt"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00", "not text"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not text"),
    ],
)
def test_it_refuses_what_it_cannot_read(data: bytes, message: str) -> None:
    with pytest.raises(ExtractionError, match=message):
        sniff_type(data, "file.txt")


def test_it_refuses_a_zip_that_is_not_a_word_file() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("evil.sh", "rm -rf /")
    with pytest.raises(ExtractionError, match="not a Word document"):
        sniff_type(buffer.getvalue(), "report.docx")


def test_it_refuses_a_docx_decompression_bomb() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"<w:document/>")
        archive.writestr("word/padding.xml", b"\0" * (120 * 1024 * 1024))
    data = buffer.getvalue()
    assert len(data) < 1024 * 1024  # small on the wire, huge unpacked
    with pytest.raises(ExtractionError, match="would unpack to more than"):
        extract(data, "docx", fallback_title="bomb.docx")


def test_it_says_when_a_pdf_is_damaged() -> None:
    with pytest.raises(ExtractionError, match="PDF"):
        extract(b"%PDF-1.4\nthis is not a pdf at all", "pdf", fallback_title="x.pdf")
