"""URLs of django-txmail: ``path("txmail/", include("django_txmail.urls"))``."""

from django.urls import path, re_path

from django_txmail.api import docs as api_docs
from django_txmail.api import errors as api_errors
from django_txmail.api import views as api
from django_txmail.tracking import views as webhooks
from django_txmail.tracking.unsubscribe import UnsubscribeView

app_name = "txmail"

urlpatterns = [
    path("webhooks/<str:provider>/", webhooks.WebhookView.as_view(), name="webhook"),
    path("unsubscribe/<str:token>/", UnsubscribeView.as_view(), name="unsubscribe"),
    path("api/messages/", api.MessageList.as_view(), name="message-list"),
    path("api/messages/<uuid:pk>/", api.MessageDetail.as_view(), name="message-detail"),
    path("api/messages/<uuid:pk>/resend/", api.Resend.as_view(), name="message-resend"),
    path("api/messages/<uuid:pk>/retry/", api.Retry.as_view(), name="message-retry"),
    path("api/messages/<uuid:pk>/cancel/", api.Cancel.as_view(), name="message-cancel"),
    path("api/events/", api.EventList.as_view(), name="event-list"),
    path("api/suppressions/", api.SuppressionList.as_view(), name="suppression-list"),
    path("api/suppressions/<int:pk>/", api.SuppressionDetail.as_view(), name="suppression-detail"),
    path("api/templates/", api.TemplateList.as_view(), name="template-list"),
    path("api/templates/<slug:slug>/render/", api.TemplateRender.as_view(), name="template-render"),
    path("api/domains/", api.DomainList.as_view(), name="domain-list"),
    path("api/domains/<str:name>/verify/", api.DomainVerify.as_view(), name="domain-verify"),
    *api_docs.urlpatterns,
    re_path(r"^api/", api_errors.not_found),  # path parameters that match no route
]
