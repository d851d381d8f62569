from django.urls import URLPattern, URLResolver, path

from . import views

app_name = "llm"
urlpatterns: list[URLPattern | URLResolver] = [
    path("endpoints/", views.endpoints, name="endpoints"),
    path("endpoints/add", views.add_endpoint, name="endpoint_add"),
    path("endpoints/<int:endpoint_id>/delete", views.delete_endpoint, name="endpoint_delete"),
    path("endpoints/<int:endpoint_id>/check", views.check_own_endpoint, name="endpoint_check"),
]
