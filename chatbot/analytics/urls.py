from django.urls import URLPattern, path

from . import views

app_name = "analytics"
urlpatterns: list[URLPattern] = [
    path("", views.report_page, name="report"),
    path("rebuild/", views.rebuild, name="rebuild"),
    path("bots/<int:bot_id>/answer/", views.add_answer, name="add_answer"),
]
