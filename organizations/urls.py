from django.urls import path

from organizations import api

org_urlpatterns = [
    path("", api.OrganizationListView.as_view(), name="org-list"),
    path("<str:slug>/", api.OrganizationDetailView.as_view(), name="org-detail"),
    path("<str:slug>/members/", api.MemberListView.as_view(), name="member-list"),
    path("<str:slug>/members/<str:user_id>/", api.MemberDetailView.as_view(),
         name="member-detail"),
    path("<str:slug>/invitations/", api.InvitationListView.as_view(), name="invitation-list"),
    path("<str:slug>/invitations/<str:invitation_id>/", api.InvitationDetailView.as_view(),
         name="invitation-detail"),
]

api_key_urlpatterns = [
    path("", api.ApiKeyListView.as_view(), name="apikey-list"),
    path("<str:key_id>/", api.ApiKeyDetailView.as_view(), name="apikey-detail"),
    path("<str:key_id>/update/", api.ApiKeyUpdateView.as_view(), name="apikey-update"),
    path("<str:key_id>/rotate/", api.ApiKeyRotateView.as_view(), name="apikey-rotate"),
]
