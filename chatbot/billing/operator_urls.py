from django.urls import URLPattern, path

from . import views

app_name = "operator"
urlpatterns: list[URLPattern] = [
    path("", views.console, name="console"),
    path("tenants/<int:tenant_id>/", views.tenant_action, name="tenant_action"),
]
