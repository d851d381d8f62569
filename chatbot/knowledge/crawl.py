"""Fetch a website's pages for ingestion: one site, a depth and page budget, robots.txt.

Every request goes through the project's one outbound client with its SSRF guard
(chatbot.lib.outbound): private, loopback, link-local and metadata addresses are refused at
connection time, on every redirect hop too. This module adds what a polite crawler needs on
top: stay on the given site, honour robots.txt and `<meta name="robots">`, cap the bytes,
pages, depth and total time.
"""

from __future__ import annotations

import time
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from urllib import robotparser
from urllib.parse import urldefrag, urlsplit, urlunsplit

import httpx
from selectolax.lexbor import LexborHTMLParser

from chatbot.lib import outbound

from . import conf
from .extract import Extracted, ExtractionError, extract, extract_html, sniff_type

ROBOTS_AGENT = "Parley"
ACCEPT = (
    "text/html,application/xhtml+xml,text/plain;q=0.9,text/markdown;q=0.9,"
    "application/pdf;q=0.8,application/vnd.openxmlformats-officedocument"
    ".wordprocessingml.document;q=0.8"
)
# Content types worth downloading; anything else (images, video, archives) is skipped.
READABLE_TYPES = (
    "text/html",
    "application/xhtml+xml",
    "text/plain",
    "text/markdown",
    "text/x-markdown",
    "application/pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
)
_SKIPPED_EXTENSIONS = [
    ".png",
    ".jpg",
    ".jpeg",
    ".gif",
    ".webp",
    ".svg",
    ".ico",
    ".bmp",
    ".tif",
    ".tiff",
    ".avif",
    ".css",
    ".js",
    ".mjs",
    ".json",
    ".xml",
    ".rss",
    ".atom",
    ".zip",
    ".gz",
    ".tgz",
    ".bz2",
    ".xz",
    ".7z",
    ".rar",
    ".tar",
    ".mp3",
    ".mp4",
    ".m4a",
    ".wav",
    ".ogg",
    ".webm",
    ".mov",
    ".avi",
    ".mkv",
    ".woff",
    ".woff2",
    ".ttf",
    ".otf",
    ".eot",
    ".exe",
    ".dmg",
    ".apk",
    ".iso",
    ".bin",
    ".csv",
    ".xls",
    ".xlsx",
    ".ppt",
    ".pptx",
]
MAX_SITEMAP_FILES = 10
MAX_CRAWL_DELAY = 5.0


class FetchError(Exception):
    """A page could not be fetched; the message names the URL and the reason."""


class Blocked(FetchError):
    """The SSRF guard refused the URL (or a redirect); never retried."""


@dataclass(frozen=True, slots=True)
class Fetched:
    url: str  # after redirects
    status: int
    content_type: str
    charset: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Page:
    """One page of the site: its text, or why it could not be read."""

    url: str
    title: str = ""
    text: str = ""
    error: str = ""


def same_site(url: str, site: str) -> bool:
    """Same host (ignoring a leading www.) and an http(s) scheme; http→https is the same site."""
    try:
        a, b = urlsplit(url), urlsplit(site)
    except ValueError:  # "Invalid IPv6 URL" in a link: not a page of the site
        return False
    if a.scheme not in ("http", "https"):
        return False

    def host(parts: object) -> str:
        name = (getattr(parts, "hostname", None) or "").lower()
        return name.removeprefix("www.")

    try:
        return host(a) == host(b) and (a.port or 0) == (b.port or 0)
    except ValueError:  # an invalid port in a link
        return False


def normalise_url(url: str) -> str:
    try:
        url = urldefrag(url.strip())[0]
        parts = urlsplit(url)
    except ValueError:  # an unclosed [ in a link: left as it is, `same_site` refuses it
        return url
    path = parts.path or "/"
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


def _parse_content_type(header: str) -> tuple[str, str]:
    mime, _, params = header.partition(";")
    charset = ""
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.lower() == "charset":
            charset = value.strip().strip("\"'")
    return mime.strip().lower(), charset


class Fetcher:
    """A guarded, size-limited GET, with a deadline shared by the whole sync."""

    def __init__(self, *, deadline: float, max_bytes: int | None = None) -> None:
        self.deadline = deadline
        self.max_bytes = max_bytes or conf.max_page_bytes()
        self.client = outbound.client(
            guarded=True,
            timeout=httpx.Timeout(conf.fetch_timeout(), connect=5.0),
            headers={"Accept": ACCEPT},
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def out_of_time(self) -> bool:
        return time.monotonic() >= self.deadline

    def _time_for_one_page(self) -> float:
        """The page's own deadline, never past the sync's."""
        return max(0.0, min(conf.fetch_deadline(), self.deadline - time.monotonic()))

    def get(self, url: str, *, any_type: bool = False) -> Fetched:
        """GET `url`; the body stays empty for errors and (unless `any_type`) unreadable types."""
        if self.out_of_time():
            raise FetchError(f"{url}: the time allowed for this sync ran out")
        try:
            with self.client.stream("GET", url) as response:
                mime, charset = _parse_content_type(response.headers.get("content-type", ""))
                if response.status_code >= 400 or (
                    mime and not any_type and not mime.startswith(READABLE_TYPES)
                ):
                    body = b""  # not worth downloading
                else:
                    body = outbound.read_limited(
                        response, self.max_bytes, deadline_seconds=self._time_for_one_page()
                    )
                return Fetched(
                    url=str(response.url),
                    status=response.status_code,
                    content_type=mime,
                    charset=charset,
                    body=body,
                )
        except outbound.BlockedURL as exc:
            raise Blocked(f"{url}: refused: {exc}") from None
        except outbound.ResponseTooLarge as exc:
            raise FetchError(f"{url}: too large: {exc}") from None
        except httpx.TooManyRedirects:
            raise FetchError(f"{url}: too many redirects") from None
        except outbound.ResponseTooSlow as exc:
            raise FetchError(
                f"the page at {url} sent too slowly; gave up after {exc.seconds:g} s"
            ) from None
        except httpx.TimeoutException:
            raise FetchError(f"{url}: the site took too long to answer") from None
        except httpx.HTTPError as exc:
            raise FetchError(f"{url}: could not be fetched ({exc.__class__.__name__})") from None


_DISALLOW_ALL = ["User-agent: *", "Disallow: /"]


class Robots:
    """robots.txt per RFC 9309: a 4xx means no rules; a 5xx or no answer means stay out."""

    def __init__(self, fetcher: Fetcher) -> None:
        self.fetcher = fetcher
        self.parsers: dict[str, robotparser.RobotFileParser] = {}

    def _parser(self, url: str) -> robotparser.RobotFileParser:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin in self.parsers:
            return self.parsers[origin]
        parser = robotparser.RobotFileParser()
        try:
            fetched = self.fetcher.get(f"{origin}/robots.txt", any_type=True)
        except Blocked:
            raise
        except FetchError:
            parser.parse(_DISALLOW_ALL)
        else:
            if fetched.status >= 500:
                parser.parse(_DISALLOW_ALL)
            elif fetched.status >= 400:
                parser.parse([])
            else:
                text = fetched.body.decode("utf-8", errors="replace")
                parser.parse(text.splitlines())
        self.parsers[origin] = parser
        return parser

    def allowed(self, url: str) -> bool:
        return self._parser(url).can_fetch(ROBOTS_AGENT, url)

    def delay(self, url: str) -> float:
        delay = self._parser(url).crawl_delay(ROBOTS_AGENT)
        return min(float(delay or 0), MAX_CRAWL_DELAY)


MAX_URL_LENGTH = 2000  # what a Document stores


def _wanted_link(url: str) -> bool:
    if len(url) > MAX_URL_LENGTH:
        return False
    path = urlsplit(url).path.lower()
    return not path.endswith(tuple(_SKIPPED_EXTENSIONS))


def _read(fetched: Fetched) -> tuple[Extracted, list[str], bool]:
    """(text, links, noindex) of a fetched page; raises ExtractionError."""
    file_type = sniff_type(fetched.body, urlsplit(fetched.url).path, fetched.content_type)
    if file_type == "html":
        page = extract_html(fetched.body, base_url=fetched.url, charset=fetched.charset)
        return Extracted(title=page.title or fetched.url, text=page.text), page.links, page.noindex
    name = urlsplit(fetched.url).path.rsplit("/", 1)[-1] or fetched.url
    return extract(fetched.body, file_type, fallback_title=name, charset=fetched.charset), [], False


def crawl(start_url: str, *, max_depth: int, max_pages: int, fetcher: Fetcher) -> Iterator[Page]:
    """Breadth-first from `start_url`, following links on the same site.

    Yields a Page per URL visited (with `error` set when it could not be read). Raises
    Blocked when the start URL itself is refused: nothing can be ingested then.
    """
    robots = Robots(fetcher)
    start = normalise_url(start_url)
    queue: deque[tuple[str, int]] = deque([(start, 0)])
    seen = {start}
    visited = 0
    while queue and visited < max_pages and not fetcher.out_of_time():
        url, depth = queue.popleft()
        try:
            if not robots.allowed(url):
                yield Page(url=url, error=f"{url}: robots.txt asks crawlers to stay out")
                continue
        except Blocked:
            if url == start:
                raise
            yield Page(url=url, error=f"{url}: refused by the address guard")
            continue
        visited += 1
        delay = robots.delay(url)
        if delay and visited > 1:
            time.sleep(delay)
        try:
            fetched = fetcher.get(url)
        except Blocked:
            if url == start:
                raise
            yield Page(url=url, error=f"{url}: refused by the address guard")
            continue
        except FetchError as exc:
            yield Page(url=url, error=str(exc))
            continue
        if fetched.status >= 400:
            yield Page(url=url, error=f"{url}: the site answered {fetched.status}")
            continue
        if not same_site(fetched.url, start):
            yield Page(url=url, error=f"{url}: redirects off the site, to {fetched.url}")
            continue
        if not fetched.body:
            continue  # not a readable type
        try:
            extracted, links, noindex = _read(fetched)
        except ExtractionError as exc:
            yield Page(url=url, error=f"{url}: {exc}")
            continue
        if not noindex:
            yield Page(url=fetched.url, title=extracted.title, text=extracted.text)
        if depth >= max_depth:
            continue
        for link in links:
            link = normalise_url(link)
            if link not in seen and same_site(link, start) and _wanted_link(link):
                seen.add(link)
                queue.append((link, depth + 1))


def _inflate(body: bytes, limit: int) -> bytes:
    if not body.startswith(b"\x1f\x8b"):
        return body
    # Bounded decompression: a gzip bomb stops at `limit` bytes.
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    data = inflater.decompress(body, limit + 1)
    if len(data) > limit:
        raise FetchError(f"the sitemap unpacks to more than {limit} bytes")
    return data


def parse_sitemap(body: bytes) -> tuple[list[str], list[str]]:
    """(page URLs, nested sitemap URLs) of a sitemap, a sitemap index, or a plain URL list."""
    text = body.decode("utf-8", errors="replace")
    if "<loc" not in text.lower():
        urls = [line.strip() for line in text.splitlines() if line.strip().startswith("http")]
        return urls, []
    # lexbor reads the XML as HTML-ish markup: no entity expansion, no external fetches.
    tree = LexborHTMLParser(text)
    nested = [node.text(strip=True) for node in tree.css("sitemap loc")]
    pages = [node.text(strip=True) for node in tree.css("url loc")]
    return [u for u in pages if u], [u for u in nested if u]


def sitemap_pages(sitemap_url: str, *, max_pages: int, fetcher: Fetcher) -> Iterator[Page]:
    """The pages a sitemap lists (on the sitemap's own site), each fetched once."""
    robots = Robots(fetcher)
    pending = [sitemap_url]
    sitemaps_read = 0
    page_urls: list[str] = []
    while pending and sitemaps_read < MAX_SITEMAP_FILES and len(page_urls) < max_pages:
        url = pending.pop(0)
        sitemaps_read += 1
        try:
            fetched = fetcher.get(url, any_type=True)
        except Blocked:
            if url == sitemap_url:
                raise
            yield Page(url=url, error=f"{url}: refused by the address guard")
            continue
        except FetchError as exc:
            if url == sitemap_url:
                raise
            yield Page(url=url, error=str(exc))
            continue
        if fetched.status >= 400:
            if url == sitemap_url:
                raise FetchError(f"{url}: the site answered {fetched.status}")
            yield Page(url=url, error=f"{url}: the site answered {fetched.status}")
            continue
        pages, nested = parse_sitemap(_inflate(fetched.body, conf.max_page_bytes()))
        pending.extend(u for u in nested if same_site(u, sitemap_url))
        for page in pages:
            page = normalise_url(page)
            if same_site(page, sitemap_url) and _wanted_link(page) and page not in page_urls:
                page_urls.append(page)
    for url in page_urls[:max_pages]:
        if fetcher.out_of_time():
            return
        try:
            if not robots.allowed(url):
                yield Page(url=url, error=f"{url}: robots.txt asks crawlers to stay out")
                continue
            fetched = fetcher.get(url)
        except FetchError as exc:
            yield Page(url=url, error=str(exc))
            continue
        if fetched.status >= 400:
            yield Page(url=url, error=f"{url}: the site answered {fetched.status}")
            continue
        if not same_site(fetched.url, sitemap_url):
            yield Page(url=url, error=f"{url}: redirects off the site, to {fetched.url}")
            continue
        if not fetched.body:
            continue
        try:
            extracted, _links, noindex = _read(fetched)
        except ExtractionError as exc:
            yield Page(url=url, error=f"{url}: {exc}")
            continue
        if not noindex:
            yield Page(url=fetched.url, title=extracted.title, text=extracted.text)
