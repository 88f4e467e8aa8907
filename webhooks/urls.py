from django.urls import path

from webhooks import api

webhook_urlpatterns = [
    path("", api.EndpointListView.as_view(), name="webhook-list"),
    path("<str:endpoint_id>/", api.EndpointDetailView.as_view(), name="webhook-detail"),
    path("<str:endpoint_id>/rotate-secret/", api.EndpointRotateView.as_view(),
         name="webhook-rotate-secret"),
    path("<str:endpoint_id>/test/", api.EndpointTestView.as_view(), name="webhook-test"),
    path("<str:endpoint_id>/deliveries/", api.DeliveryListView.as_view(),
         name="webhook-delivery-list"),
    path("<str:endpoint_id>/deliveries/<str:delivery_id>/redeliver/",
         api.RedeliverView.as_view(), name="webhook-redeliver"),
]
