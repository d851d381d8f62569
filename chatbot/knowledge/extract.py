"""Text out of the file types a tenant can give us: txt, md, html, pdf, docx.

The type is decided from the bytes, never from the name or a Content-Type header alone: a
`.pdf` that is really HTML is read as HTML (or refused), and an executable named `.txt` is
refused. Every failure raises `ExtractionError` with a message the manager can act on.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field
from urllib.parse import urldefrag, urljoin

from selectolax.lexbor import LexborHTMLParser, LexborNode

FILE_TYPES = ("txt", "md", "html", "pdf", "docx")
MAX_TEXT_CHARS = 2_000_000  # per document, after extraction
MAX_PDF_PAGES = 1000
# A .docx is a zip: refuse archives that would inflate past this (decompression bombs).
MAX_DOCX_UNZIPPED_BYTES = 100 * 1024 * 1024
MAX_DOCX_ENTRIES = 5000

_DROPPED_TAGS = [
    "script",
    "style",
    "noscript",
    "template",
    "svg",
    "canvas",
    "iframe",
    "form",
    "nav",
    "header",
    "footer",
    "aside",
    "button",
    "select",
]
_BLOCK_TAGS = (
    "p, div, section, article, main, li, dt, dd, h1, h2, h3, h4, h5, h6, pre, blockquote, "
    "tr, table, br, hr, figcaption, summary, details"
)


class ExtractionError(Exception):
    """The document cannot be read; the message is shown to the manager as is."""


@dataclass(frozen=True, slots=True)
class Extracted:
    title: str
    text: str


@dataclass(frozen=True, slots=True)
class HtmlPage:
    title: str
    text: str
    links: list[str] = field(default_factory=list)
    # <meta name="robots" content="noindex, nofollow"> is honoured like robots.txt.
    noindex: bool = False
    nofollow: bool = False


def sniff_type(data: bytes, name: str = "", content_type: str = "") -> str:
    """Decide the type from the content; the name or header only separates txt from md/html.

    Raises ExtractionError for anything that is not one of FILE_TYPES.
    """
    if not data.strip():
        raise ExtractionError("The file is empty.")
    head = data[:2048]
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                if "word/document.xml" in archive.namelist():
                    return "docx"
        except zipfile.BadZipFile:
            pass
        raise ExtractionError(
            "This archive is not a Word document. Parley reads .txt, .md, .html, .pdf and .docx."
        )
    if b"\x00" in head:
        # Text never carries NUL bytes (UTF-16 text is not supported either).
        raise ExtractionError(
            "This file is not text, PDF or Word. Parley reads .txt, .md, .html, .pdf and .docx."
        )
    lowered = head.lstrip().lower()
    if (
        lowered.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))
        or "html" in content_type.lower()
        or name.lower().endswith((".html", ".htm"))
    ):
        return "html"
    if name.lower().endswith((".md", ".markdown")) or "markdown" in content_type.lower():
        return "md"
    return "txt"


def decode_text(data: bytes, declared_charset: str = "") -> str:
    """Bytes to text: the declared charset, then UTF-8, then Windows-1252 (never fails)."""
    for encoding in (declared_charset, "utf-8-sig"):
        if not encoding:
            continue
        try:
            return data.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("cp1252", errors="replace")


def normalise_whitespace(text: str) -> str:
    """Collapse runs of spaces, keep paragraph breaks (blank lines) and line breaks."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ")
    lines = [re.sub(r"[ \t\f\v]+", " ", line).strip() for line in text.split("\n")]
    joined = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", joined).strip()


def _limit(text: str) -> str:
    return text[:MAX_TEXT_CHARS]


def extract(data: bytes, file_type: str, *, fallback_title: str, charset: str = "") -> Extracted:
    if file_type == "pdf":
        return extract_pdf(data, fallback_title=fallback_title)
    if file_type == "docx":
        return extract_docx(data, fallback_title=fallback_title)
    if file_type == "html":
        page = extract_html(data, base_url="", charset=charset)
        return Extracted(title=page.title or fallback_title, text=page.text)
    if file_type == "md":
        return extract_markdown(decode_text(data, charset), fallback_title=fallback_title)
    if file_type == "txt":
        text = normalise_whitespace(decode_text(data, charset))
        return Extracted(title=fallback_title, text=_limit(text))
    raise ExtractionError(f"Unsupported file type {file_type!r}.")


_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_MD_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_MD_ATX_LINE = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$", re.MULTILINE)


def extract_markdown(source: str, *, fallback_title: str) -> Extracted:
    heading = _MD_HEADING.search(source)
    title = heading.group(1).strip() if heading else fallback_title
    # Keep the words, drop link targets and images: they only add noise to search and prompts.
    text = _MD_IMAGE.sub(r"\1", source)
    text = _MD_LINK.sub(r"\1", text)
    # Headings stay as "## Heading" lines: the chunker cuts at them and keeps their path.
    text = _MD_ATX_LINE.sub(lambda m: f"{m.group(1)} {m.group(2)}", text)
    text = re.sub(r"^\s{0,3}(>|[-*+]|\d+\.)\s+", "", text, flags=re.MULTILINE)
    # Inline code marks go; a fence ("```") stays, so that the chunker knows a "# comment" in
    # a code block is no heading.
    text = re.sub(r"(\*\*|__|(?<!`)`{1,2}(?!`))", "", text)
    return Extracted(title=title[:300], text=_limit(normalise_whitespace(text)))


_META_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_\-]+)""", re.IGNORECASE)


def extract_html(data: bytes | str, *, base_url: str, charset: str = "") -> HtmlPage:
    if isinstance(data, bytes):
        if not charset:
            match = _META_CHARSET.search(data[:4096])
            charset = match.group(1).decode("ascii") if match else ""
        html = decode_text(data, charset)
    else:
        html = data
    tree = LexborHTMLParser(html)

    noindex = nofollow = False
    for meta in tree.css("meta[name]"):
        if (meta.attributes.get("name") or "").lower() in ("robots", "parley"):
            directives = (meta.attributes.get("content") or "").lower()
            noindex = noindex or "noindex" in directives or "none" in directives
            nofollow = nofollow or "nofollow" in directives or "none" in directives

    title = ""
    for selector in ("title", 'meta[property="og:title"]', "h1"):
        node = tree.css_first(selector)
        if node is None:
            continue
        value = node.attributes.get("content") if node.tag == "meta" else node.text()
        title = " ".join((value or "").split())
        if title:
            break

    links: list[str] = []
    if base_url and not nofollow:
        base = tree.css_first("base[href]")
        page_base = urljoin(base_url, base.attributes.get("href") or "") if base else base_url
        for anchor in tree.css("a[href]"):
            if "nofollow" in (anchor.attributes.get("rel") or "").lower():
                continue
            href = (anchor.attributes.get("href") or "").strip()
            if not href or href.startswith(("#", "mailto:", "tel:", "javascript:")):
                continue
            link = urldefrag(urljoin(page_base, href))[0]
            if link not in links:
                links.append(link)

    tree.strip_tags(_DROPPED_TAGS)
    # Prefer the page's main content when it marks it; fall back to the whole body.
    root = tree.css_first("main") or tree.css_first("article") or tree.body
    if root is None:
        return HtmlPage(title=title[:300], text="", links=links, noindex=noindex, nofollow=nofollow)
    for block in root.css(_BLOCK_TAGS):
        block.insert_after("\n\n")
    for code in root.css("pre"):
        # Fenced like Markdown: a "# comment" in a code block is no heading for the chunker.
        code.insert_before("\n\n```\n")
        code.insert_after("\n```\n\n")
    _mark_headings(root)
    text = normalise_whitespace(root.text(deep=True))
    return HtmlPage(
        title=title[:300], text=_limit(text), links=links, noindex=noindex, nofollow=nofollow
    )


def _mark_headings(root: LexborNode) -> None:
    """h1-h6 become Markdown heading lines ("## Returns"), the form the chunker cuts at."""
    for node in root.css("h1, h2, h3, h4, h5, h6"):
        name = " ".join(node.text(deep=True).split())
        level = int((node.tag or "h2")[1])
        if name:
            node.replace_with(f"\n\n{'#' * level} {name}\n\n")
        else:
            node.decompose()


def extract_pdf(data: bytes, *, fallback_title: str) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractionError("The PDF is password-protected; upload an unprotected copy.")
        if len(reader.pages) > MAX_PDF_PAGES:
            raise ExtractionError(
                f"The PDF has {len(reader.pages)} pages; the limit is {MAX_PDF_PAGES}."
            )
        pages: list[str] = []
        total = 0
        for page in reader.pages:
            page_text = page.extract_text() or ""
            pages.append(page_text)
            total += len(page_text)
            if total > MAX_TEXT_CHARS:
                break
        metadata_title = ""
        if reader.metadata is not None and reader.metadata.title:
            metadata_title = str(reader.metadata.title).strip()
    except ExtractionError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ExtractionError(f"The PDF could not be read ({exc}).") from None
    text = normalise_whitespace("\n\n".join(pages))
    if not text:
        raise ExtractionError(
            "The PDF has no text layer (it may be scanned images); upload a PDF with text."
        )
    return Extracted(title=(metadata_title or fallback_title)[:300], text=_limit(text))


def _check_zip(data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except zipfile.BadZipFile:
        raise ExtractionError("The Word file is damaged (not a valid zip archive).") from None
    if len(entries) > MAX_DOCX_ENTRIES:
        raise ExtractionError("The Word file has too many parts to be a normal document.")
    if sum(entry.file_size for entry in entries) > MAX_DOCX_UNZIPPED_BYTES:
        raise ExtractionError(
            "The Word file would unpack to more than "
            f"{MAX_DOCX_UNZIPPED_BYTES // (1024 * 1024)} MB; it is refused."
        )


def _docx_heading_level(style: str) -> int:
    """1 for "Title" and "Heading 1", 2 for "Heading 2"... 0 for any other paragraph style."""
    if style == "Title":
        return 1
    match = re.fullmatch(r"Heading ([1-6])", style)
    return int(match.group(1)) if match else 0


def extract_docx(data: bytes, *, fallback_title: str) -> Extracted:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    _check_zip(data)
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises a variety of lxml/zip/KeyError types
        raise ExtractionError(f"The Word file could not be read ({exc}).") from None

    title = (document.core_properties.title or "").strip()
    blocks: list[str] = []
    for item in document.iter_inner_content():
        if isinstance(item, Paragraph):
            text = item.text.strip()
            style = (item.style.name if item.style is not None else "") or ""
            if text and not title and (style == "Title" or style.startswith("Heading")):
                title = text
            if text:
                level = _docx_heading_level(style)
                blocks.append(f"{'#' * level} {text}" if level else text)
        elif isinstance(item, Table):
            for row in item.rows:
                cells = [cell.text.strip() for cell in row.cells]
                # Merged cells repeat; keep each value once per row.
                unique = list(dict.fromkeys(cell for cell in cells if cell))
                if unique:
                    blocks.append(" | ".join(unique))
    text = normalise_whitespace("\n\n".join(blocks))
    if not text:
        raise ExtractionError("The Word file contains no text.")
    return Extracted(title=(title or fallback_title)[:300], text=_limit(text))
