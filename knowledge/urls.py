from django.urls import path

from knowledge import api

domain_urlpatterns = [
    path("", api.DomainListView.as_view(), name="domain-list"),
    path("<slug:slug>/", api.DomainDetailView.as_view(), name="domain-detail"),
    path("<slug:slug>/categories/", api.CategoryListView.as_view(), name="domain-categories"),
]

document_urlpatterns = [
    path("", api.DocumentListView.as_view(), name="document-list"),
    path("<str:document_id>/", api.DocumentDetailView.as_view(), name="document-detail"),
    path("<str:document_id>/download/", api.DocumentDownloadView.as_view(),
         name="document-download"),
]
