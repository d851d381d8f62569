from django.urls import URLPattern, URLResolver, path

from . import views

app_name = "conversations"
urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.conversation_list, name="list"),
    path("export/", views.conversations_export, name="export_filtered"),
    path("waiting.json", views.waiting_json, name="waiting"),
    path("canned/", views.canned_list, name="canned"),
    path("canned/<int:canned_id>/delete/", views.canned_delete, name="canned_delete"),
    path("visitors/<str:visitor_id>/export/", views.visitor_export, name="visitor_export"),
    path("visitors/<str:visitor_id>/erase/", views.visitor_erase, name="visitor_erase"),
    path("<str:public_id>/", views.conversation_detail, name="detail"),
    path("<str:public_id>/live/", views.conversation_transcript, name="live"),
    path("<str:public_id>/export/", views.conversation_export, name="export"),
    path("<str:public_id>/takeover/", views.conversation_takeover, name="takeover"),
    path("<str:public_id>/handback/", views.conversation_handback, name="handback"),
    path("<str:public_id>/assign/", views.conversation_assign, name="assign"),
    path("<str:public_id>/close/", views.conversation_close, name="close"),
    path("<str:public_id>/reopen/", views.conversation_reopen, name="reopen"),
    path("<str:public_id>/reply/", views.conversation_reply, name="reply"),
    path("<str:public_id>/note/", views.conversation_note, name="note"),
]
