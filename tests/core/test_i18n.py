"""The dashboard's languages: catalogues compiled and consistent, the member's choice over
the browser's, right-to-left Arabic."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from django.conf import settings
from django.test import Client

from chatbot.profiles.actions import update_profile
from chatbot.tenants.models import User

LOCALE = Path(settings.BASE_DIR) / "locale"
LANGS = [code for code, _name in settings.LANGUAGES if code != "en"]
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


def strings(catalog: Any) -> dict[str, Any]:
    """msgid -> translation, for translated entries (Babel writes an untranslated plural
    entry into the .mo with the English forms: those count as untranslated)."""
    return {
        (m.id if isinstance(m.id, str) else m.id[0]): (
            tuple(m.string) if isinstance(m.string, tuple | list) else m.string
        )
        for m in catalog
        if m.id
        and (
            any(m.string) and tuple(m.string)[:2] != tuple(m.id)
            if isinstance(m.string, tuple | list)
            else m.string
        )
    }


@pytest.mark.parametrize("lang", LANGS)
def test_the_committed_mo_file_is_compiled_from_the_po_file(lang: str) -> None:
    folder = LOCALE / lang / "LC_MESSAGES"
    with (folder / "django.po").open("rb") as po, (folder / "django.mo").open("rb") as mo:
        source, compiled = read_po(po, locale=lang), read_mo(mo)
    assert strings(source) == strings(compiled), "run `make messages` and commit the .mo file"
    assert len(strings(source)) >= 150


@pytest.mark.parametrize("lang", LANGS)
def test_every_extracted_string_is_translated(lang: str) -> None:
    """Every msgid of locale/django.pot has a translation (all plural forms) in each language:
    a new dashboard string needs `make messages` and its translations before it is merged."""
    with (LOCALE / "django.pot").open("rb") as pot:
        wanted = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(pot) if m.id}
    with (LOCALE / lang / "LC_MESSAGES" / "django.po").open("rb") as po:
        catalog = read_po(po, locale=lang)
    incomplete = {
        m.id if isinstance(m.id, str) else m.id[0]
        for m in catalog
        if m.id and not (all(m.string) if isinstance(m.string, tuple | list) else m.string)
    }
    missing = sorted(wanted - set(strings(catalog)) | (wanted & incomplete))
    assert not missing, f"{lang}: {len(missing)} untranslated, e.g. {missing[:5]}"


@pytest.mark.parametrize("lang", LANGS)
def test_translations_keep_every_placeholder(lang: str) -> None:
    with (LOCALE / lang / "LC_MESSAGES" / "django.po").open("rb") as po:
        catalog = read_po(po, locale=lang)
    for message in catalog:
        if not message.id or not message.string:
            continue
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        texts = [message.string] if isinstance(message.string, str) else list(message.string)
        wanted = set(PLACEHOLDER.findall(ids[0]))
        for text in filter(None, texts):
            assert set(PLACEHOLDER.findall(text)) == wanted, (lang, message.id, text)


@pytest.mark.django_db
def test_the_browsers_language_and_then_the_members_choice(client_for: Any, alice: User) -> None:
    client: Client = client_for(alice)
    german = client.get("/dashboard/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert '<html lang="de" dir="ltr">' in german and "Posteingang" in german
    update_profile(alice, name="Alice", avatar=None, remove_avatar=False, language="fr")
    french = client.get("/dashboard/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert '<html lang="fr" dir="ltr">' in french and "Boîte de réception" in french
    assert "Invitez votre équipe" in french
    update_profile(alice, name="Alice", avatar=None, remove_avatar=False, language="ar")
    arabic = client.get("/conversations/").content.decode()
    assert '<html lang="ar" dir="rtl">' in arabic and "صندوق الوارد" in arabic
    # The dashboard's scripts get their words in the same language.
    assert json.dumps("زائر ينتظر شخصًا.")[1:-1] in arabic


@pytest.mark.django_db
def test_dates_and_numbers_follow_the_language(client_for: Any, alice: User, acme: Any) -> None:
    from datetime import UTC, datetime

    from django.utils import translation

    from chatbot.jinja2 import day, number, when

    moment = datetime(2026, 12, 5, 17, 44, tzinfo=UTC)
    with translation.override("en"):
        assert (day(moment), number(1234.5)) == ("12/05/2026", "1,234.5")
    with translation.override("fr"):
        assert (day(moment), when(moment)) == ("05/12/2026", "05/12/2026 17:44")
        assert number(1234.5) in ("1\u202f234,5", "1\xa0234,5", "1 234,5")
    with translation.override("de"):
        assert (day(moment), number(1234.5)) == ("05.12.2026", "1.234,5")
    update_profile(alice, name="Alice", avatar=None, remove_avatar=False, language="de")
    page = client_for(alice).get("/dashboard/team/").content.decode()
    assert datetime.now(UTC).strftime("%d.%m.%Y") in page
