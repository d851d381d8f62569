"""Widget weight and speed: bytes of every shipped file against the budgets, and, in Chromium,
the time from a click on the launcher to a usable composer.

    .venv/bin/python bench/widget_size/run.py            # sizes, then timings (5 runs each)
    .venv/bin/python bench/widget_size/run.py --sizes    # sizes only
    .venv/bin/python bench/widget_size/run.py --runs 9

The timing part serves the platform from a throw-away SQLite database (uvicorn in a thread),
a host page on another origin, and drives Debian's chromium headless. Exits 1 when a budget
is exceeded.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def setup_django(var_dir: str) -> None:
    os.environ["PARLEY_VAR_DIR"] = var_dir
    os.environ.setdefault("PARLEY_TESTING", "1")  # static files from the apps, no collectstatic
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API
    import django

    django.setup()


def timings(runs: int) -> None:
    from django.core.management import call_command
    from django.test.utils import override_settings
    from playwright.sync_api import sync_playwright

    from chatbot.bots.actions import create_bot
    from chatbot.tenants.models import Tenant
    from tests.fixtures.browser import CHROMIUM_ARGS
    from tests.fixtures.servers import _ThreadedUvicorn, free_port
    from tests.widget.browser.helpers import embed_page, start_site, time_to_usable_composer

    call_command("migrate", verbosity=0)
    port = free_port()
    platform = f"http://127.0.0.1:{port}"
    override_settings(SITE_URL=platform).enable()
    site = start_site()
    tenant = Tenant.objects.create(name="Bench", slug="bench")
    bot = create_bot(
        tenant,
        None,
        name="Bench assistant",
        greeting="Hi! How can I help?",
        suggested_questions=["What do you sell?", "Where are you?"],
        allowed_origins=[site.origin],
    )
    site.pages["/"] = embed_page(bot, platform)
    from chatbot.asgi import application

    server = _ThreadedUvicorn(application, port)
    server.start()
    executable = shutil.which("chromium")
    if executable is None:
        print("timings skipped: Debian's chromium is not installed")
        return
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=executable, headless=True, args=CHROMIUM_ARGS
            )
            print(f"\nclick on the launcher -> usable composer, Chromium headless, {runs} runs")
            for label, prefetched in (
                ("no prefetch (frame loads on click)", False),
                ("frame prefetched on idle", True),
            ):
                samples = []
                for _ in range(runs):
                    context = browser.new_context()
                    page = context.new_page()
                    samples.append(
                        time_to_usable_composer(page, site.url("/"), prefetched=prefetched)
                    )
                    context.close()
                print(
                    f"  {label:<36} median {statistics.median(samples):6.0f} ms   "
                    f"min {min(samples):5.0f}   max {max(samples):5.0f}"
                )
            browser.close()
    finally:
        server.stop()
        site.server.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", action="store_true", help="sizes only, no browser")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="parley-bench-") as var_dir:
        setup_django(var_dir)
        from bench.widget_size.sizes import FRAME_BUDGET, LOADER_BUDGET, measure, report

        rows = measure()
        print(report(rows))
        over = (
            rows[0].gzip > LOADER_BUDGET or sum(r.gzip for r in rows if r.in_frame) > FRAME_BUDGET
        )
        if not args.sizes:
            timings(args.runs)
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
