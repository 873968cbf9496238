from django.urls import path

from integrations import views

app_name = "integrations"

urlpatterns = [
    path("webhooks/<slug:kind>/<str:token>/", views.webhook_receive, name="webhook"),
]
