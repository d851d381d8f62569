"""Routes anyone may reach without logging in.

The route inventory test (tests/tenants/test_route_inventory.py) walks every HTTP and
WebSocket route: each must either be named here or refuse an anonymous request. Adding a
public route means adding it here, on purpose, in the same change.
"""

from __future__ import annotations

# URL pattern names (namespaced where the app has a namespace).
PUBLIC_URL_NAMES: frozenset[str] = frozenset(
    {
        "landing",
        "demo",
        "healthz",
        "readyz",
        # Prometheus: its own bearer token (METRICS_TOKEN), or loopback without a proxy when
        # none is set; everyone else gets the same 404 as a missing page (chatbot/core/views.py).
        "metrics",
        # allauth: the pages one uses before being logged in.
        "account_login",
        "account_signup",
        "account_confirm_email",
        "account_email_verification_sent",
        "account_reset_password",
        "account_reset_password_done",
        "account_reset_password_from_key",
        "account_reset_password_from_key_done",
        "account_confirm_login_code",
        "account_inactive",
        "account_logout",
        "mfa_authenticate",
        "mfa_reauthenticate",
        # The widget: loaded by host pages and their visitors (docs/widget-protocol.md).
        "widget:loader",
        "widget:config",
        "widget:frame",
        "widget:session",
        "widget:send",
        "widget:events",
        "widget:upload",
        "widget:attachment",
        # Members' avatars: visitors' frames show them next to an agent's messages.
        "profiles:avatar",
        # An invitation link explains itself to anyone; accepting it requires logging in.
        "tenants:invitation",
        # The REST API's schema and its reference page (every endpoint needs an API key).
        "api:v1:openapi-json",
        "api:v1:openapi-view",
        # The API's root: its version and links, nothing of any workspace.
        "api:v1:root",
        # django-ninja's root: only an anchor for reverse(); it answers 404 to everyone.
        "api:v1:api-root",
    }
)

# URL prefixes whose own machinery authenticates (Django admin: staff log-in).
PUBLIC_URL_PREFIXES: tuple[str, ...] = ("admin/",)

# WebSocket routes that authenticate per connection with their own token (not a session).
PUBLIC_WEBSOCKET_PATHS: frozenset[str] = frozenset(
    {
        # Origin-checked at the handshake, then a visitor session token in `hello`.
        "ws/widget/<str:public_key>",
    }
)
