from django.contrib import admin
from django.urls import include, path, re_path
from rest_framework_simplejwt import views as jwt_views

from assistant import api as assistant_api
from assistant.urls import session_urlpatterns
from billing import api as billing_api
from core import metrics as core_metrics
from core import views as core_views
from knowledge.urls import document_urlpatterns, domain_urlpatterns
from organizations import api as organizations_api
from organizations.urls import api_key_urlpatterns, org_urlpatterns
from webhooks import api as webhooks_api
from webhooks.urls import webhook_urlpatterns

auth_urlpatterns = [
    path("jwt/create/", core_views.LoginView.as_view(), name="jwt-create"),
    path("jwt/refresh/", jwt_views.TokenRefreshView.as_view(), name="jwt-refresh"),
    path("jwt/verify/", jwt_views.TokenVerifyView.as_view(), name="jwt-verify"),
    path("jwt/logout/", jwt_views.TokenBlacklistView.as_view(), name="jwt-logout"),
    path("register/", core_views.RegisterView.as_view(), name="register"),
    path("me/", core_views.MeView.as_view(), name="me"),
    path("password/reset/", core_views.PasswordResetView.as_view(), name="password-reset"),
    path("password/reset/confirm/", core_views.PasswordResetConfirmView.as_view(),
         name="password-reset-confirm"),
    path("invitations/accept/", organizations_api.InvitationAcceptView.as_view(),
         name="invitation-accept"),
]

urlpatterns = [
    path("health/", core_views.HealthView.as_view(), name="health"),
    # Second: the quota read is the hottest authenticated request (docs/benchmarks.md, "Hot
    # path: the quota read"), and URL resolution tries the patterns in order. (The OpenAPI
    # document sorts its paths; the order here does not show in it.)
    path("v1/billings/subscription/", billing_api.SubscriptionView.as_view(),
         name="subscription"),
    # Prometheus scrapes /metrics by default; /metrics/ follows the API's trailing slash.
    re_path(r"^metrics/?$", core_metrics.metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("auth/", include(auth_urlpatterns)),
    path("v1/orgs/", include(org_urlpatterns)),
    path("v1/domains/", include(domain_urlpatterns)),
    path("v1/documents/", include(document_urlpatterns)),
    path("v1/models/", assistant_api.ModelListView.as_view(), name="model-list"),
    path("v1/query/", assistant_api.QueryView.as_view(), name="query"),
    path("v1/sessions/", include(session_urlpatterns)),
    path("v1/compare/", assistant_api.CompareView.as_view(), name="compare"),
    path("v1/compare/<str:comparison_id>/", assistant_api.CompareDetailView.as_view(),
         name="compare-detail"),
    path("v1/billings/plans/", billing_api.PlanListView.as_view(), name="plan-list"),
    path("v1/billings/usage/", billing_api.UsageView.as_view(), name="usage"),
    path("v1/billings/ledger/", billing_api.LedgerView.as_view(), name="ledger"),
    path("v1/billings/api-keys/", include(api_key_urlpatterns)),
    path("v1/webhooks/", include(webhook_urlpatterns)),
    path("v1/events/", webhooks_api.EventListView.as_view(), name="event-list"),
    # The OpenAPI 3 document and its interactive reference (public; offline assets).
    path("v1/schema/", core_views.SchemaView.as_view(), name="schema"),
    path("docs/", core_views.DocsView.as_view(), name="docs"),
    # Last: anything else is a JSON 404, whatever DEBUG says.
    re_path(r"^(?P<path>.*)$", core_views.not_found, name="not-found"),
]

handler400 = "core.errors.bad_request"
handler403 = "core.errors.permission_denied"
handler404 = "core.errors.page_not_found"
handler500 = "core.errors.server_error"
