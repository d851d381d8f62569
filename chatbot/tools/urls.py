from django.urls import URLPattern, URLResolver, path

from . import views

app_name = "tools"
urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.action_list, name="list"),
    path("new", views.action_create, name="create"),
    path("<int:action_id>/", views.action_edit, name="edit"),
    path("<int:action_id>/test", views.action_test, name="test"),
    path("<int:action_id>/delete", views.action_delete, name="delete"),
    path("contacts/", views.contact_list, name="contacts"),
    path("contacts/export.csv", views.contact_export, name="contacts_export"),
    path("contacts/<int:contact_id>/delete", views.contact_delete, name="contact_delete"),
]
