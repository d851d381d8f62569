"""Installation help: record where the widget runs, and explain why it does not.

`check_site` fetches a page of the tenant's site (through the one guarded outbound client)
and says, in words a site owner can act on, what stops the launcher from showing: the origin
missing from the bot's allowed sites, the snippet missing from the page, or the page's
Content-Security-Policy blocking the loader, its config request or its frame (with the exact
directives to add).
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from chatbot.bots.models import Bot, normalize_origin
from chatbot.bots.snippets import embed_snippet, site_origin
from chatbot.lib import outbound

from .models import WidgetSighting

SIGHTING_EVERY_SECONDS = 60
MAX_PAGE_BYTES = 2 * 1024 * 1024
CHECK_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
CHECK_DEADLINE_SECONDS = 20.0  # the whole page, however slowly its server sends it


# --- Sightings --------------------------------------------------------------------------------


def page_without_query(page: object, origin: str) -> str:
    """The page's origin and path, only if it is on `origin` (else "")."""
    if not isinstance(page, str) or len(page) > 2000:
        return ""
    parts = urlsplit(page)
    if f"{parts.scheme}://{parts.netloc}".lower() != origin.lower():
        return ""
    return (origin + (parts.path or "/"))[:500]


def record_sighting(bot: Bot, origin: str, page: str = "") -> None:
    """Note that the widget opened on `origin` (an allowed origin, checked by the caller).
    Written at most once a minute per bot and origin: the cache decides, so a busy site costs
    no database write per visitor."""
    if not cache.add(f"parley:sighting:{bot.pk}:{origin}", 1, SIGHTING_EVERY_SECONDS):
        return
    now = timezone.now()
    fields = {"last_seen_at": now, **({"page_url": page} if page else {})}
    if WidgetSighting.objects.filter(bot=bot, origin=origin).update(**fields):
        return
    try:
        with transaction.atomic():
            WidgetSighting.objects.create(bot=bot, origin=origin, **fields)
    except IntegrityError:  # another process saw it first
        WidgetSighting.objects.filter(bot=bot, origin=origin).update(**fields)


@dataclass(frozen=True)
class SiteStatus:
    origin: str
    sighting: WidgetSighting | None


def site_statuses(bot: Bot) -> list[SiteStatus]:
    """Each allowed origin with its sighting (None: the widget has not opened there yet)."""
    seen = {s.origin: s for s in WidgetSighting.objects.filter(bot=bot)}
    return [SiteStatus(origin, seen.get(origin)) for origin in bot.allowed_origins]


def tenant_has_sightings(tenant_id: int) -> bool:
    return WidgetSighting.objects.filter(bot__tenant_id=tenant_id).exists()


# --- Content-Security-Policy ------------------------------------------------------------------

# What the loader needs from the host page's policy, and the directive each falls back to.
NEEDS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("script-src", ("script-src-elem", "script-src", "default-src"), "load the widget's script"),
    ("connect-src", ("connect-src", "default-src"), "fetch the widget's settings"),
    ("frame-src", ("frame-src", "child-src", "default-src"), "show the chat window (a frame)"),
)


def parse_policy(header: str) -> dict[str, list[str]]:
    """One policy: directive name -> source list (the first occurrence wins, as in browsers)."""
    policy: dict[str, list[str]] = {}
    for part in header.split(";"):
        tokens = part.split()
        if tokens and tokens[0].lower() not in policy:
            policy[tokens[0].lower()] = tokens[1:]
    return policy


def _host_matches(pattern: str, host: str) -> bool:
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return pattern == host


def source_allows(sources: list[str], url: str) -> bool:
    """Whether a CSP source list lets the page load `url` (schemes, hosts, wildcards; the
    subset of CSP3's matching that decides for an origin-level URL)."""
    target = urlsplit(url)
    scheme, host = target.scheme, (target.hostname or "")
    port = target.port or (443 if scheme == "https" else 80)
    for raw in sources:
        source = raw.strip().lower()
        if source == "*":
            if scheme in ("http", "https"):
                return True
            continue
        if re.fullmatch(r"[a-z][a-z0-9+.-]*:", source):
            # "https:" allows https (and an http page's "http:" allows https too).
            if source[:-1] == scheme or (source == "http:" and scheme == "https"):
                return True
            continue
        if source.startswith("'"):
            continue
        match = re.fullmatch(r"(?:([a-z][a-z0-9+.-]*)://)?([^/:]+)(?::(\d+|\*))?(/.*)?", source)
        if not match:
            continue
        src_scheme, src_host, src_port, _path = match.groups()
        if src_scheme and src_scheme != scheme and not (src_scheme == "http" and scheme == "https"):
            continue
        if not _host_matches(src_host, host):
            continue
        if src_port == "*" or (src_port and int(src_port) == port):
            return True
        # No port in the source: the target must be on its scheme's default port.
        if not src_port and port == (443 if scheme == "https" else 80):
            return True
    return False


def _effective(policy: dict[str, list[str]], chain: tuple[str, ...]) -> tuple[str, list[str]]:
    for name in chain:
        if name in policy:
            return name, policy[name]
    return "", []


def inline_stub(bot: Bot) -> str:
    """The body of the snippet's first (inline) script, exactly as the page carries it."""
    return embed_snippet(bot).split("<script>", 1)[1].split("</script>", 1)[0]


def inline_hash(bot: Bot) -> str:
    digest = hashlib.sha256(inline_stub(bot).encode()).digest()
    return "'sha256-" + base64.b64encode(digest).decode() + "'"


@dataclass
class Problem:
    title: str
    detail: str
    fix: list[str] = field(default_factory=list)


def csp_problems(bot: Bot, policies: list[str]) -> list[Problem]:
    """What each policy blocks, with the directive lines that would let the widget run."""
    platform = site_origin()
    problems: list[Problem] = []
    for header in policies:
        policy = parse_policy(header)
        fixes: list[str] = []
        blocked: list[str] = []
        for directive, chain, purpose in NEEDS:
            name, sources = _effective(policy, chain)
            if not name or source_allows(sources, platform + "/"):
                continue
            blocked.append(purpose)
            kept = [s for s in sources if s.lower() != "'none'"]
            fixes.append(" ".join([directive, *kept, platform]))
        name, sources = _effective(policy, NEEDS[0][1])
        lowered = [s.lower() for s in sources]
        stub_blocked = bool(name) and not (
            "'unsafe-inline'" in lowered
            and not any(s.startswith(("'nonce-", "'sha")) for s in lowered)
        )
        if stub_blocked and inline_hash(bot).lower() not in lowered:
            blocked.append("run the snippet's small inline script")
            line = next((f for f in fixes if f.startswith("script-src ")), None)
            if line is None:
                line = " ".join(["script-src", *[s for s in sources if s != "'none'"]])
                fixes.append(line)
            fixes[fixes.index(line)] = line + " " + inline_hash(bot)
        if blocked:
            problems.append(
                Problem(
                    "The page's Content-Security-Policy blocks the widget",
                    "Its policy does not let the page " + ", ".join(blocked) + ". "
                    "Change these directives of your Content-Security-Policy (header or "
                    "<meta> tag) to read as below (the hash allows exactly the snippet's "
                    "inline script; a nonce on that script works too):",
                    [line + ";" for line in fixes],
                )
            )
    return problems


class _PageScan(HTMLParser):
    """The page's CSP <meta> tags and the src of every script."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.policies: list[str] = []
        self.scripts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k.lower(): v or "" for k, v in attrs}
        if tag == "meta" and values.get("http-equiv", "").lower() == "content-security-policy":
            self.policies.append(values.get("content", ""))
        elif tag == "script" and values.get("src"):
            self.scripts.append(values["src"])


@dataclass
class SiteReport:
    url: str
    origin: str = ""
    error: str = ""
    origin_allowed: bool = False
    snippet_found: bool = False
    key_found: bool = False
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.error and not self.problems


def check_site(bot: Bot, url: str) -> SiteReport:
    """Fetch `url` and explain what would stop the launcher from showing there."""
    url = url.strip()
    if "://" not in url:
        url = "https://" + url
    report = SiteReport(url=url)
    try:
        report.origin = normalize_origin(f"{urlsplit(url).scheme}://{urlsplit(url).netloc}")
    except (ValidationError, ValueError):
        report.error = "This is not a web address like https://www.example.com/."
        return report
    report.origin_allowed = bot.allows_origin(report.origin)
    if not report.origin_allowed:
        report.problems.append(
            Problem(
                "This site is not in the bot's allowed sites",
                f"Add {report.origin} to “Allowed sites” on the bot's page and save: the "
                "widget answers only on the sites listed there (each one exactly: "
                "www.example.com and example.com are two sites).",
                [report.origin],
            )
        )
    try:
        with (
            outbound.client(timeout=CHECK_TIMEOUT) as http,
            http.stream("GET", url, headers={"Accept": "text/html"}) as response,
        ):
            body = outbound.read_limited(
                response, MAX_PAGE_BYTES, deadline_seconds=CHECK_DEADLINE_SECONDS
            )
            headers = response.headers
            status = response.status_code
    except outbound.BlockedURL:
        report.error = "Parley may not fetch this address (it is a private or local address)."
        return report
    except httpx.HTTPError as exc:
        report.error = f"We could not load the page: {exc}."
        return report
    if status >= 400:
        report.error = f"The page answered with HTTP status {status}."
        return report
    scan = _PageScan()
    scan.feed(body.decode("utf-8", errors="replace"))
    loader = site_origin() + "/widget.js"
    report.snippet_found = any(src.split("?")[0] == loader for src in scan.scripts)
    report.key_found = bot.public_key in body.decode("utf-8", errors="replace")
    if not report.snippet_found or not report.key_found:
        report.problems.append(
            Problem(
                "The snippet is not in this page",
                "The page's HTML has no script loading "
                f"{loader} with this bot's key. Paste the snippet from the bot's page just "
                "before </body>. If you add it through Google Tag Manager or your app's "
                "JavaScript, it is not in the HTML and this check cannot see it: open the "
                "page and look for the launcher instead.",
            )
        )
    policies = [
        p.strip()
        for p in headers.get_list("content-security-policy", split_commas=True)
        if p.strip()
    ]
    report.problems += csp_problems(bot, [*policies, *scan.policies])
    return report
