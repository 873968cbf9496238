"""The product's URLs plus ``/bare/``: the baseline the intake benchmark compares to."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import urlpatterns as product_urlpatterns


@csrf_exempt
def bare(request: HttpRequest) -> JsonResponse:
    """Answer like the webhook view does, doing none of its work."""
    if request.method != "POST":
        return JsonResponse({"error": "POST only"}, status=405)
    return JsonResponse({"received": True, "status": "received", "duplicate": False})


urlpatterns = [*product_urlpatterns, path("bare/", bare, name="bench-bare")]
