from django.urls import URLPattern, path

from . import views

app_name = "billing"
urlpatterns: list[URLPattern] = [path("", views.usage, name="usage")]
