from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView


def health(request):
    return JsonResponse({"ok": True})


admin.site.site_header = "Znode ⇄ Stripe integration"
admin.site.site_title = "Integration admin"
admin.site.index_title = "Operations"

urlpatterns = [
    path("", include("integrations.urls")),
    path("health/", health, name="health"),
    path("admin/", admin.site.urls),
    # The finance API and its OpenAPI schema; the docs' assets are our own static files.
    path("api/", include("reconciliation.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
]
