"""A shorter dispatch for hot GET endpoints read with an API key (docs/benchmarks.md, "Hot path:
the quota read").

DRF's dispatch wraps the request, negotiates the renderer, walks the authentication and
permission classes, and only then runs the view; on a read that answers in a couple of
milliseconds that machinery is a large share of the CPU. For the one case that dominates the
traffic of such an endpoint, a plain `GET` with an API key and an `Accept` header that can
only mean JSON, `ApiKeyFastPath` takes the same steps directly: the key is looked up as
`ApiKeyAuthentication` does (one query), the view's throttles and its `Acting` are checked as
DRF would, and the view's `representation(acting)` is rendered by the view's renderer through
DRF's own `finalize_response`, so the status, headers and body are DRF's.

Everything else goes through DRF's dispatch unchanged: other methods, a JWT or no credentials,
another `Accept`, a key that is refused (the lookup already made is reused, not repeated),
and a request forced through DRF's test client. Any other exception (429, 403, the database
failing during the lookup or after it) is answered by the view's own `handle_exception`, as
DRF's dispatch answers it.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponseBase
from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from core.authentication import (ApiKeyAuthentication, ApiKeyPrincipal, api_key_credential,
                                 api_key_for_request)
from core.tenancy import Acting, acting_context
from core.throttles import PrincipalRateThrottle

# `Accept` values for which DRF's negotiation picks the JSON renderer with its own media type
# (no parameters such as `indent`); an absent header counts as `*/*`, as in DRF.
_PLAIN_ACCEPT = frozenset({"*/*", "application/json"})


class ApiKeyFastPath:
    """Mixin for an `APIView` whose `get` answers `self.representation(self.acting(request))`.

    The view must keep DRF's defaults where the shortcut relies on them: the API key class
    among its authentication classes, `IsAuthenticated` alone as permission, per-principal
    throttles, one JSON renderer and DRF's content negotiation (checked by `as_view`)."""

    def representation(self, acting: Acting) -> dict:
        raise NotImplementedError

    @classmethod
    def as_view(cls, **initkwargs):
        problems = [
            name for name, ok in (
                ("authentication_classes", ApiKeyAuthentication in cls.authentication_classes),
                ("permission_classes", list(cls.permission_classes) == [IsAuthenticated]),
                ("throttle_classes", all(issubclass(c, PrincipalRateThrottle)
                                         for c in cls.throttle_classes)),
                ("renderer_classes", len(cls.renderer_classes) == 1
                 and issubclass(cls.renderer_classes[0], JSONRenderer)),
                ("content_negotiation_class",
                 cls.content_negotiation_class is DefaultContentNegotiation),
                ("versioning_class", cls.versioning_class is None),
            ) if not ok]
        if problems:
            raise ImproperlyConfigured(f"{cls.__name__} cannot take the API-key fast path: "
                                       f"{', '.join(problems)} differ from what it relies on.")
        return super().as_view(**initkwargs)

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponseBase:
        raw = self._fast_path_key(request, kwargs)
        if raw is None:
            return super().dispatch(request, *args, **kwargs)
        self.args, self.kwargs = args, kwargs
        self.request = request
        self.headers = self.default_response_headers
        self.format_kwarg = None
        renderer = self.renderer_classes[0]()
        # What DRF's negotiation would have stored for this Accept.
        request.accepted_renderer, request.accepted_media_type = renderer, renderer.media_type
        try:
            key = api_key_for_request(request, raw)
        except exceptions.AuthenticationFailed:
            return super().dispatch(request, *args, **kwargs)  # DRF's 401, from the same lookup
        except Exception as exc:  # the database failing, as DRF would meet it authenticating
            return self._answer_exception(request, exc, args, kwargs)
        # DRF sets the principal on the HttpRequest as well: the request's log line reads it.
        request.user, request.auth = ApiKeyPrincipal(key), None
        try:
            self.check_throttles(request)
            response = Response(self.representation(acting_context(request)))
        except Exception as exc:
            return self._answer_exception(request, exc, args, kwargs)
        return self.finalize_response(request, response, *args, **kwargs)

    def _fast_path_key(self, request: HttpRequest, kwargs: dict) -> str | None:
        """The API key of a request the fast path answers, else None."""
        if (request.method != "GET"
                or request.META.get("HTTP_ACCEPT", "*/*") not in _PLAIN_ACCEPT
                or self.settings.URL_FORMAT_OVERRIDE is not None
                or self.settings.FORMAT_SUFFIX_KWARG in kwargs
                or getattr(request, "_force_auth_user", None) is not None
                or getattr(request, "_force_auth_token", None) is not None):
            return None
        return api_key_credential(request)

    def _answer_exception(self, request: HttpRequest, exc: Exception, args, kwargs):
        """As DRF's dispatch answers an exception raised after authentication: its Request
        (whose authentication reuses the lookup made), handle_exception, finalize_response."""
        drf_request = self.initialize_request(request, *args, **kwargs)
        self.request = drf_request
        self.headers = self.default_response_headers
        return self.finalize_response(drf_request, self.handle_exception(exc), *args, **kwargs)
