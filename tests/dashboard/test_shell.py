"""The dashboard shell: navigation registry, switcher, empty states, settings sections,
role decorators on sync and async views, themes."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.sessions.backends.db import SessionStore
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory

from chatbot.dashboard import nav, settings_sections
from chatbot.dashboard.settings_sections import SettingsSection, TenantSettingsForm
from chatbot.tenants.middleware import resolve_membership
from chatbot.tenants.models import AuditEvent, Tenant, User
from chatbot.tenants.permissions import manager_required, member_required

ClientFor = Callable[[User], Client]


@pytest.fixture
def clean_registries() -> Iterator[None]:
    saved_nav, saved_sections = list(nav.NAV), list(settings_sections.SECTIONS)
    yield
    nav.NAV[:] = saved_nav
    settings_sections.SECTIONS[:] = saved_sections


@pytest.mark.django_db
class TestNavigation:
    @pytest.mark.usefixtures("clean_registries")
    def test_apps_add_entries_and_unresolvable_ones_are_hidden(
        self, alice: User, charlie: User, client_for: ClientFor
    ) -> None:
        nav.register(nav.NavItem("Reports", "dashboard:audit", nav.MANAGERS, "chart", 30))
        nav.register(nav.NavItem("Not wired yet", "nowhere:list", nav.EVERYONE, "bot", 31))
        owner_page = client_for(alice).get("/dashboard/").content.decode()
        assert "Reports" in owner_page
        assert "Not wired yet" not in owner_page
        assert "Reports" not in client_for(charlie).get("/dashboard/").content.decode()

    def test_the_current_section_is_marked_for_assistive_technology(
        self, alice: User, client_for: ClientFor
    ) -> None:
        page = client_for(alice).get("/dashboard/keys/").content.decode()
        assert 'href="/dashboard/keys/" aria-current="page"' in page
        assert 'href="/dashboard/" aria-current="page"' not in page

    def test_the_shell_has_a_skip_link_a_menu_button_and_a_theme_switch(
        self, alice: User, client_for: ClientFor
    ) -> None:
        response = client_for(alice).get("/dashboard/")
        page = response.content.decode()
        assert 'class="skip-link" href="#main"' in page
        assert 'aria-controls="sidebar" aria-expanded="false"' in page
        assert "data-theme-toggle" in page and "/static/js/theme.js" in page
        assert response["X-Frame-Options"] == "DENY"
        csp = response["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp

    def test_one_query_budget_for_the_home_page(
        self,
        alice: User,
        client_for: ClientFor,
        django_assert_max_num_queries: Callable[..., object],
    ) -> None:
        client = client_for(alice)
        client.get("/dashboard/")
        # 12 before the usage meters, which add three (tests/billing/test_meters.py).
        with django_assert_max_num_queries(15):  # type: ignore[operator]
            client.get("/dashboard/")


@pytest.mark.django_db
class TestEmptyStates:
    def test_a_new_workspace_is_told_what_to_do_next(
        self, alice: User, client_for: ClientFor
    ) -> None:
        page = client_for(alice).get("/dashboard/").content.decode()
        for step in ("Create your first bot", "Teach it about your business", "Invite your team"):
            assert step in page

    def test_an_agent_is_pointed_at_conversations(
        self, charlie: User, client_for: ClientFor
    ) -> None:
        page = client_for(charlie).get("/dashboard/").content.decode()
        assert "Conversations land here" in page
        assert "Create your first bot" not in page

    def test_a_user_without_a_workspace_gets_a_clear_page(self, db: None) -> None:
        user = User.objects.create_user("loner@example.test", "pw-loner-123")
        client = Client()
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        page = client.get("/dashboard/keys/").content.decode()
        assert "You are not in a workspace yet" in page
        assert 'href="/tenants/new/"' in page

    def test_empty_keys_and_audit_pages_explain_themselves(
        self, alice: User, client_for: ClientFor
    ) -> None:
        client = client_for(alice)
        assert "No keys yet" in client.get("/dashboard/keys/").content.decode()
        audit_page = client.get("/dashboard/audit/").content.decode()
        # Creating the workspace is already recorded by sign-up; fixtures make rows directly.
        assert "Nothing recorded yet" in audit_page


@pytest.mark.django_db
class TestSettings:
    def test_saving_the_workspace_section_is_audited(
        self, acme: Tenant, alice: User, client_for: ClientFor
    ) -> None:
        response = client_for(alice).post(
            "/dashboard/settings/",
            {
                "section": "workspace",
                "workspace-name": "Acme Corp",
                "workspace-timezone": "Europe/Paris",
            },
        )
        assert response.status_code == 302
        acme.refresh_from_db()
        assert (acme.name, acme.timezone) == ("Acme Corp", "Europe/Paris")
        event = AuditEvent.objects.get(action="settings.updated")
        assert event.details == {"fields": ["name", "timezone"]} and event.target == "workspace"

    def test_fields_outside_the_form_cannot_be_set(
        self, acme: Tenant, bravo: Tenant, alice: User, client_for: ClientFor
    ) -> None:
        before = Tenant.objects.filter(pk=acme.pk).values("slug", "created_at", "id").get()
        client_for(alice).post(
            "/dashboard/settings/",
            {
                "section": "workspace",
                "workspace-name": "Acme",
                "workspace-timezone": "UTC",
                "workspace-slug": "bravo",
                "workspace-id": bravo.pk,
                "workspace-created_at": "2000-01-01T00:00:00Z",
                "id": bravo.pk,
                "tenant": bravo.pk,
            },
        )
        assert Tenant.objects.filter(pk=acme.pk).values("slug", "created_at", "id").get() == before
        assert Tenant.objects.get(pk=bravo.pk).name == "Bravo"

    def test_an_unknown_time_zone_is_refused_with_an_example(
        self, alice: User, client_for: ClientFor
    ) -> None:
        response = client_for(alice).post(
            "/dashboard/settings/",
            {"section": "workspace", "workspace-name": "Acme", "workspace-timezone": "Mars/Base"},
        )
        assert response.status_code == 400
        assert "is not a known time zone (e.g. Europe/Paris)" in response.content.decode()

    @pytest.mark.usefixtures("clean_registries")
    def test_other_apps_add_their_own_sections(
        self, acme: Tenant, alice: User, client_for: ClientFor
    ) -> None:
        class NameOnly(TenantSettingsForm):
            class Meta:
                model = Tenant
                fields = ("name",)

        settings_sections.register(SettingsSection("extra", "Extra section", NameOnly, order=20))
        client = client_for(alice)
        assert "Extra section" in client.get("/dashboard/settings/").content.decode()
        client.post("/dashboard/settings/", {"section": "extra", "extra-name": "Acme Extra"})
        acme.refresh_from_db()
        assert acme.name == "Acme Extra"


def _request(user: object, path: str = "/dashboard/x/") -> HttpRequest:
    request = RequestFactory().get(path)
    request.user = user  # type: ignore[assignment]
    request.session = SessionStore()
    request._messages = FallbackStorage(request)  # type: ignore[attr-defined]
    membership = resolve_membership(request)
    request.membership = membership  # type: ignore[attr-defined]
    request.tenant = membership.tenant if membership else None  # type: ignore[attr-defined]
    return request


@pytest.mark.django_db(transaction=True)
class TestDecorators:
    def test_sync_views(self, alice: User, charlie: User) -> None:
        @manager_required
        def view(request: HttpRequest) -> HttpResponse:
            return HttpResponse(f"hello {request.tenant}")  # type: ignore[attr-defined]

        assert view.parley_role == "manager"  # type: ignore[attr-defined]
        anonymous = view(_request(AnonymousUser()))
        assert anonymous.status_code == 302
        assert anonymous["Location"] == "/accounts/login/?next=/dashboard/x/"
        assert view(_request(charlie)).status_code == 403
        assert view(_request(alice)).content == b"hello Acme"

    def test_async_views(self, alice: User, charlie: User) -> None:
        from asgiref.sync import sync_to_async

        from tests.asyncrun import run

        @member_required
        async def view(request: HttpRequest) -> HttpResponse:
            return HttpResponse("inbox")

        async def scenario() -> tuple[HttpResponse, HttpResponse]:
            anonymous = await view(await sync_to_async(_request)(AnonymousUser()))
            member = await view(await sync_to_async(_request)(charlie))
            return anonymous, member

        anonymous, member = run(scenario())
        assert anonymous.status_code == 302
        assert member.content == b"inbox"


def test_the_css_has_light_and_dark_themes() -> None:
    from pathlib import Path

    css = (Path(__file__).resolve().parents[2] / "static/css/parley.css").read_text()
    assert "prefers-color-scheme: dark" in css
    assert ':root[data-theme="dark"]' in css
    assert "@media (max-width: 760px)" in css


@pytest.mark.django_db
def test_the_api_reference_loads_nothing_from_a_cdn() -> None:
    page = Client().get("/api/v1/docs").content.decode()
    assert "cdn." not in page and "/static/ninja/" in page
