"""Bots: origins, the form's validation, the actions (mass assignment, rotation), snippet."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from chatbot.bots import actions
from chatbot.bots.forms import BotForm
from chatbot.bots.models import Bot, normalize_origin
from chatbot.bots.snippets import embed_snippet
from chatbot.tenants.models import Tenant, User


class TestOrigins:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("https://Shop.Example.com", "https://shop.example.com"),
            ("https://shop.example.com/", "https://shop.example.com"),
            ("https://shop.example.com:443", "https://shop.example.com"),
            ("http://localhost:8001", "http://localhost:8001"),
            ("http://127.0.0.1:80", "http://127.0.0.1"),
        ],
    )
    def test_origins_are_stored_the_way_browsers_send_them(self, raw: str, expected: str) -> None:
        assert normalize_origin(raw) == expected

    @pytest.mark.parametrize(
        "raw",
        [
            "shop.example.com",
            "ftp://shop.example.com",
            "https://shop.example.com/path",
            "https://*.example.com",
            "https://user:pw@shop.example.com",
            "https://shop.example.com?x=1",
            "javascript:alert(1)",
        ],
    )
    def test_anything_but_an_origin_is_refused(self, raw: str) -> None:
        with pytest.raises(ValidationError):
            normalize_origin(raw)

    def test_look_alikes_do_not_match(self, acme: Tenant) -> None:
        bot = Bot.objects.create(tenant=acme, name="b", allowed_origins=["https://acme.com"])
        assert bot.allows_origin("https://acme.com")
        for other in (
            "https://acme.com.evil.example",
            "https://evilacme.com",
            "http://acme.com",
            "https://acme.com:8443",
            "null",
            "",
            None,
        ):
            assert not bot.allows_origin(other), other


def form_data(**overrides: str) -> dict[str, str]:
    data = {
        "name": "Acme help",
        "title": "",
        "system_prompt": "Be kind.",
        "greeting": "Hi!",
        "default_locale": "fr",
        "accent_color": "#112233",
        "position": "left",
        "theme": "dark",
        "launcher_icon": "help",
        "avatar_url": "",
        "enabled": "on",
        "suggested_questions_text": "Where is my order?\n\nWhere is my order?\nOpening hours?",
        "allowed_origins_text": "https://Shop.Acme.test/\nhttps://shop.acme.test",
    }
    data.update(overrides)
    return data


class TestForm:
    def test_it_normalises_lists(self, db: None) -> None:
        form = BotForm(form_data())
        assert form.is_valid(), form.errors
        fields = form.bot_fields()
        assert fields["suggested_questions"] == ["Where is my order?", "Opening hours?"]
        assert fields["allowed_origins"] == ["https://shop.acme.test"]

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("accent_color", "red; background:url(x)"),
            ("avatar_url", "http://insecure.example/a.png"),
            ("allowed_origins_text", "https://ok.example\nnot an origin"),
            ("suggested_questions_text", "\n".join(f"q{i}" for i in range(7))),
            ("position", "middle"),
            ("default_locale", "xx"),
        ],
    )
    def test_it_refuses_bad_values_with_a_message(self, db: None, field: str, value: str) -> None:
        form = BotForm(form_data(**{field: value}))
        assert not form.is_valid()
        assert form.errors[field]


class TestActions:
    def test_create_ignores_fields_a_form_may_not_set(
        self, acme: Tenant, bravo: Tenant, alice: User
    ) -> None:
        bot = actions.create_bot(
            acme,
            alice,
            name="Acme help",
            tenant_id=bravo.pk,
            public_key="pk_chosen",
            identity_secret="is_chosen",
            session_generation=99,
        )
        bot.refresh_from_db()
        assert bot.tenant == acme
        assert bot.public_key != "pk_chosen" and bot.identity_secret != "is_chosen"
        assert bot.session_generation == 1

    def test_update_writes_only_editable_fields(self, acme: Tenant, alice: User) -> None:
        bot = actions.create_bot(acme, alice, name="Acme help")
        key = bot.public_key
        actions.update_bot(bot, alice, name="Renamed", public_key="pk_stolen", tenant_id=0)
        bot.refresh_from_db()
        assert (bot.name, bot.public_key, bot.tenant_id) == ("Renamed", key, acme.pk)

    def test_rotation_changes_the_secret_and_the_generation(
        self, acme: Tenant, alice: User
    ) -> None:
        bot = actions.create_bot(acme, alice, name="Acme help")
        old = bot.identity_secret
        actions.rotate_identity_secret(bot, alice)
        assert bot.identity_secret != old and bot.identity_secret.startswith("is_")
        assert bot.session_generation == 2


class TestSnippet:
    def test_the_snippet_has_the_queue_stub_and_the_stable_loader_url(
        self, acme: Tenant, settings: object
    ) -> None:
        settings.SITE_URL = "https://parley.example"  # type: ignore[attr-defined]
        bot = Bot.objects.create(tenant=acme, name="b")
        snippet = embed_snippet(bot)
        assert "(Parley.q = Parley.q || []).push(arguments)" in snippet
        assert f"Parley('init', {{ key: \"{bot.public_key}\" }});" in snippet
        assert '<script async src="https://parley.example/widget.js"></script>' in snippet
        assert bot.identity_secret not in snippet
