"""URLs of django-txmail: ``path("txmail/", include("django_txmail.urls"))``."""

from django.urls import path

from . import api

app_name = "txmail"

urlpatterns = [
    path("api/messages/<uuid:pk>/", api.MessageDetail.as_view(), name="message-detail"),
]
