from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path


def health(request):
    return JsonResponse({"ok": True})


admin.site.site_header = "Znode ⇄ Stripe integration"
admin.site.site_title = "Integration admin"
admin.site.index_title = "Operations"

urlpatterns = [
    path("", include("integrations.urls")),
    path("health/", health, name="health"),
    path("admin/", admin.site.urls),
]
