"""The bot pages in the dashboard: who may see them, create, edit, rotate, preview."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from chatbot.bots.models import Bot
from chatbot.tenants.models import Tenant, User

from .test_models_and_actions import form_data


@pytest.fixture
def acme_bot(acme: Tenant) -> Bot:
    return Bot.objects.create(tenant=acme, name="Acme help", allowed_origins=["https://a.test"])


class TestAccess:
    def test_agents_and_strangers_are_refused(
        self, acme_bot: Bot, charlie: User, client_for: Callable[[User], Client]
    ) -> None:
        for url in ("/bots/", "/bots/new", f"/bots/{acme_bot.pk}/"):
            assert client_for(charlie).get(url).status_code == 403, url
            assert Client().get(url).status_code == 302, url

    def test_another_tenants_bot_is_404_and_unchanged(
        self, acme_bot: Bot, bob: User, client_for: Callable[[User], Client]
    ) -> None:
        client = client_for(bob)
        assert client.get(f"/bots/{acme_bot.pk}/").status_code == 404
        assert client.post(f"/bots/{acme_bot.pk}/", form_data(name="Mine")).status_code == 404
        assert client.post(f"/bots/{acme_bot.pk}/rotate-secret").status_code == 404
        assert client.post(f"/bots/{acme_bot.pk}/delete").status_code == 404
        fresh = Bot.objects.get(pk=acme_bot.pk)
        assert (fresh.name, fresh.identity_secret) == ("Acme help", acme_bot.identity_secret)


class TestPages:
    def test_the_list_shows_only_this_tenants_bots(
        self, acme_bot: Bot, bravo: Tenant, alice: User, client_for: Callable[[User], Client]
    ) -> None:
        Bot.objects.create(tenant=bravo, name="Bravo secret bot")
        page = client_for(alice).get("/bots/").content.decode()
        assert "Acme help" in page and "Bravo secret bot" not in page

    def test_create_then_edit_shows_preview_and_snippet(
        self, acme: Tenant, alice: User, client_for: Callable[[User], Client]
    ) -> None:
        client = client_for(alice)
        response = client.post("/bots/new", form_data(name="Shop helper"))
        assert response.status_code == 302
        bot = Bot.objects.get(tenant=acme, name="Shop helper")
        assert bot.allowed_origins == ["https://shop.acme.test"]
        assert bot.position == "left" and bot.default_locale == "fr"
        page = client.get(response["Location"]).content.decode()
        assert f"/widget/frame/{bot.public_key}?preview=1" in page  # data-src, set by edit.js
        assert "(Parley.q = Parley.q || []).push(arguments)" in page
        assert "data-copy-snippet" in page

    def test_invalid_input_shows_the_errors(
        self, acme_bot: Bot, alice: User, client_for: Callable[[User], Client]
    ) -> None:
        response = client_for(alice).post(
            f"/bots/{acme_bot.pk}/", form_data(allowed_origins_text="https://ok.test/path")
        )
        assert response.status_code == 200
        assert "an origin has no path" in response.content.decode()
        assert Bot.objects.get(pk=acme_bot.pk).allowed_origins == ["https://a.test"]

    def test_rotating_the_secret_revokes_sessions(
        self, acme_bot: Bot, alice: User, client_for: Callable[[User], Client]
    ) -> None:
        response = client_for(alice).post(f"/bots/{acme_bot.pk}/rotate-secret")
        assert response.status_code == 302
        fresh = Bot.objects.get(pk=acme_bot.pk)
        assert fresh.identity_secret != acme_bot.identity_secret
        assert fresh.session_generation == acme_bot.session_generation + 1

    def test_the_preview_frame_gets_a_preview_session_for_managers_only(
        self,
        acme_bot: Bot,
        alice: User,
        charlie: User,
        client_for: Callable[[User], Client],
    ) -> None:
        import json

        body = json.dumps({"bot": acme_bot.public_key, "origin": "http://127.0.0.1:8000"})
        ok = client_for(alice).post(
            "/widget/api/session",
            body,
            content_type="application/json",
            HTTP_ORIGIN="http://127.0.0.1:8000",
        )
        assert ok.status_code == 200
        refused = client_for(charlie).post(
            "/widget/api/session",
            body,
            content_type="application/json",
            HTTP_ORIGIN="http://127.0.0.1:8000",
        )
        assert refused.status_code == 403


def test_bot_text_cannot_close_the_preview_config_script(
    acme: Tenant, alice: User, client_for: Callable[[User], Client]
) -> None:
    hostile = '</script><img src=x onerror="window.__xss=1">'
    bot = Bot.objects.create(tenant=acme, name="Help", greeting=hostile, title=hostile)
    page = client_for(alice).get(f"/bots/{bot.pk}/").content.decode()
    assert '<script id="bot-preview-config" type="application/json">' in page
    assert "</script><img" not in page
    assert "\\u003C/script\\u003E\\u003Cimg" in page


def test_the_install_steps_show_the_body_tag_as_text(
    acme: Tenant, alice: User, client_for: Callable[[User], Client]
) -> None:
    bot = Bot.objects.create(tenant=acme, name="Help", allowed_origins=["https://shop.example"])
    page = client_for(alice).get(f"/bots/{bot.pk}/").content.decode()
    assert "Paste this snippet just before &lt;/body&gt; on every page" in page
