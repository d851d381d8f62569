from django.urls import URLPattern, URLResolver, path

from . import views

app_name = "dashboard"
urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.home, name="home"),
    path("team/", views.team, name="team"),
    path("team/members/<int:membership_id>/role/", views.member_role, name="member_role"),
    path("team/members/<int:membership_id>/remove/", views.member_remove, name="member_remove"),
    path(
        "team/invitations/<int:invitation_id>/revoke/",
        views.invitation_revoke,
        name="invitation_revoke",
    ),
    path("keys/", views.keys, name="keys"),
    path("keys/<int:key_id>/revoke/", views.key_revoke, name="key_revoke"),
    path("audit/", views.audit, name="audit"),
    path("settings/", views.settings_page, name="settings"),
    path("settings/delete/", views.delete_workspace, name="delete_workspace"),
]
