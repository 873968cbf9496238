import hmac

from django.conf import settings
from django.contrib import admin
from django.http import HttpResponse, JsonResponse
from django.urls import include, path
from django.views.decorators.cache import never_cache
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView


@never_cache
def health(request):
    """Readiness: the database, the broker, a live worker, the backlog and the oldest
    job's wait (integrations.services.health); 503 when any is unhealthy."""
    from integrations.services.health import health_check

    report = health_check()
    return JsonResponse(report.as_json(), status=200 if report.healthy else 503)


@never_cache
def metrics(request):
    """Prometheus' scrape (integrations/kernel/metrics.py): with METRICS_TOKEN set, only for
    ``Authorization: Bearer <token>``; without it, only under DEBUG (403 otherwise)."""
    from integrations.kernel.metrics import exposition

    token = settings.METRICS_TOKEN
    given = request.META.get("HTTP_AUTHORIZATION", "")
    if token:
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return JsonResponse(
                {"error": "Authorization: Bearer <METRICS_TOKEN> needed"}, status=401
            )
    elif not settings.DEBUG:
        return JsonResponse({"error": "set METRICS_TOKEN to serve /metrics"}, status=403)
    body, content_type = exposition()
    return HttpResponse(body, content_type=content_type)


@never_cache
def live(request):
    """Liveness: this process answers (no database, no broker)."""
    return JsonResponse({"status": "ok"})


@never_cache
def dashboard(request):
    """The admin home's dashboard panel (htmx refreshes it): staff with the view
    permission on jobs (every role)."""
    from integrations.views import dashboard_panel

    return dashboard_panel(request)


@never_cache
def mapping_preview(request, pk):
    from integrations.views import mapping_preview_panel

    return mapping_preview_panel(request, pk)


@never_cache
def mapping_suggest(request, pk):
    from integrations.views import mapping_suggest_panel

    return mapping_suggest_panel(request, pk)


def redrive(request, pk):
    from integrations.views import redrive_page

    return redrive_page(request, pk)


admin.site.site_header = "Znode ⇄ Stripe integration"
admin.site.site_title = "Integration admin"
admin.site.index_title = "Operations"

urlpatterns = [
    path("", include("integrations.urls")),
    path("health/", health, name="health"),
    path("health/live/", live, name="health-live"),
    path("metrics", metrics, name="metrics"),
    path("admin/dashboard/", admin.site.admin_view(dashboard), name="integrations-dashboard"),
    path(
        "admin/mapping-preview/<int:pk>/",
        admin.site.admin_view(mapping_preview),
        name="integrations-mapping-preview",
    ),
    path(
        "admin/redrive/<int:pk>/",
        admin.site.admin_view(redrive),
        name="integrations-redrive",
    ),
    path(
        "admin/mapping-suggest/<int:pk>/",
        admin.site.admin_view(mapping_suggest),
        name="integrations-mapping-suggest",
    ),
    path("admin/", admin.site.urls),
    # The finance API and its OpenAPI schema; the docs' assets are our own static files.
    path("api/", include("reconciliation.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
]
