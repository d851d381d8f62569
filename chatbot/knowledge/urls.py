from django.urls import URLPattern, URLResolver, path

from . import views

app_name = "knowledge"
urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.source_list, name="list"),
    path("add/", views.add_source, name="add"),
    path("test/", views.test_bot, name="test"),
    path("<int:source_id>/", views.source_detail, name="detail"),
    path("<int:source_id>/sync/", views.source_sync, name="sync"),
    path("<int:source_id>/delete/", views.source_delete, name="delete"),
]
