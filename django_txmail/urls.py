"""URLs of django-txmail: ``path("txmail/", include("django_txmail.urls"))``."""

from django.urls import path

from django_txmail.api import views as api
from django_txmail.tracking import views as webhooks
from django_txmail.tracking.unsubscribe import UnsubscribeView

app_name = "txmail"

urlpatterns = [
    path("webhooks/<str:provider>/", webhooks.WebhookView.as_view(), name="webhook"),
    path("unsubscribe/<str:token>/", UnsubscribeView.as_view(), name="unsubscribe"),
    path("api/messages/<uuid:pk>/", api.MessageDetail.as_view(), name="message-detail"),
]
