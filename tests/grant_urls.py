"""The test URLs plus the optional mailbox connect URLs (``django_txmail.grant_urls``)."""

from django.urls import include, path

from tests.urls import urlpatterns as base

urlpatterns = [
    *base,
    path("txmail/grants/", include("django_txmail.grant_urls")),
    path("accounts/", include("django.contrib.auth.urls")),
]
