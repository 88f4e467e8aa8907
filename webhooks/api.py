from __future__ import annotations

from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import NewestFirstPagination, OrganizationScopedView, validated
from core.tenancy import Acting
from webhooks import schema, selectors, services
from webhooks.serializers import (DeliverySerializer, EndpointSerializer,
                                  EndpointUpdateSerializer, EndpointWriteSerializer,
                                  EventQuerySerializer, EventSerializer, endpoint_body)

MANAGE = "manage webhooks"
QUEUED = {"detail": "Queued."}


class WebhookView(OrganizationScopedView):
    def manager(self, request: Request) -> Acting:
        acting = self.acting(request)
        acting.require_manager(MANAGE)
        return acting


class EndpointListView(WebhookView):
    @schema.endpoint_list
    def get(self, request: Request) -> Response:
        endpoints = selectors.endpoints_of(self.manager(request).organization)
        return Response(EndpointSerializer(endpoints, many=True).data)

    @schema.endpoint_create
    def post(self, request: Request) -> Response:
        acting = self.manager(request)
        data = validated(EndpointWriteSerializer, request.data)
        endpoint, secret = services.endpoint_create(acting.organization, **data)
        return Response(endpoint_body(endpoint, secret), status=status.HTTP_201_CREATED)


class EndpointDetailView(WebhookView):
    @schema.endpoint_detail
    def get(self, request: Request, endpoint_id: str) -> Response:
        endpoint = services.endpoint_get(self.manager(request).organization, endpoint_id)
        return Response(EndpointSerializer(endpoint).data)

    @schema.endpoint_update
    def patch(self, request: Request, endpoint_id: str) -> Response:
        endpoint = services.endpoint_get(self.manager(request).organization, endpoint_id)
        data = validated(EndpointUpdateSerializer, request.data)
        return Response(EndpointSerializer(services.endpoint_update(endpoint, data)).data)

    @schema.endpoint_delete
    def delete(self, request: Request, endpoint_id: str) -> Response:
        services.endpoint_delete(services.endpoint_get(self.manager(request).organization,
                                                       endpoint_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class EndpointRotateView(WebhookView):
    @schema.endpoint_rotate
    def post(self, request: Request, endpoint_id: str) -> Response:
        endpoint = services.endpoint_get(self.manager(request).organization, endpoint_id)
        secret = services.endpoint_rotate_secret(endpoint)
        return Response(endpoint_body(endpoint, secret))


class EndpointTestView(WebhookView):
    @schema.endpoint_test
    def post(self, request: Request, endpoint_id: str) -> Response:
        endpoint = services.endpoint_get(self.manager(request).organization, endpoint_id)
        delivery = services.endpoint_test(endpoint)
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class DeliveryListView(WebhookView):
    @schema.delivery_list
    def get(self, request: Request, endpoint_id: str) -> Response:
        endpoint = services.endpoint_get(self.manager(request).organization, endpoint_id)
        paginator = NewestFirstPagination()
        page = paginator.paginate_queryset(selectors.deliveries_of(endpoint), request, self)
        return paginator.get_paginated_response(DeliverySerializer(page, many=True).data)


class RedeliverView(WebhookView):
    @schema.delivery_redeliver
    def post(self, request: Request, endpoint_id: str, delivery_id: str) -> Response:
        endpoint = services.endpoint_get(self.manager(request).organization, endpoint_id)
        delivery = services.delivery_redeliver(services.delivery_get(endpoint, delivery_id))
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class EventListView(OrganizationScopedView):
    @schema.event_list
    def get(self, request: Request) -> Response:
        acting = self.acting(request)
        if not acting.is_api_key:
            acting.require_manager("read events")
        params = validated(EventQuerySerializer, request.query_params.dict())
        events = selectors.events_of(acting.organization, event_type=params.get("type"))
        paginator = NewestFirstPagination()
        page = paginator.paginate_queryset(events, request, self)
        context = {"organization": acting.organization}
        return paginator.get_paginated_response(EventSerializer(page, many=True,
                                                                context=context).data)
