from django.urls import path

from assistant import api

session_urlpatterns = [
    path("recent/", api.SessionRecentView.as_view(), name="session-recent"),
    path("<str:session_id>/", api.SessionDetailView.as_view(), name="session-detail"),
    path("<str:session_id>/messages/", api.SessionMessagesView.as_view(),
         name="session-messages"),
    path("<str:session_id>/rename/", api.SessionRenameView.as_view(), name="session-rename"),
    path("<str:session_id>/delete/", api.SessionDeleteView.as_view(), name="session-delete"),
    path("<str:session_id>/export/", api.SessionExportView.as_view(), name="session-export"),
]
