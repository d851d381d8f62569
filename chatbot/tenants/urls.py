from django.urls import URLPattern, URLResolver, path

from . import views

app_name = "tenants"
urlpatterns: list[URLPattern | URLResolver] = [
    path("invitations/<str:token>/", views.invitation, name="invitation"),
    path("switch/", views.switch, name="switch"),
    path("new/", views.create, name="create"),
]
