from django.contrib import admin
from django.http import JsonResponse
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
def live(request):
    """Liveness: this process answers (no database, no broker)."""
    return JsonResponse({"status": "ok"})


admin.site.site_header = "Znode ⇄ Stripe integration"
admin.site.site_title = "Integration admin"
admin.site.index_title = "Operations"

urlpatterns = [
    path("", include("integrations.urls")),
    path("health/", health, name="health"),
    path("health/live/", live, name="health-live"),
    path("admin/", admin.site.urls),
    # The finance API and its OpenAPI schema; the docs' assets are our own static files.
    path("api/", include("reconciliation.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
]
