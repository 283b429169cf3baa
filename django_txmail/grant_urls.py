"""Connected mailboxes: ``path("txmail/grants/", include("django_txmail.grant_urls"))``.

Optional: a project that lets its users connect their own mailbox includes
these; the Nylas account then needs ``CLIENT_ID`` (system check txmail.E040).
"""

from django.urls import path

from django_txmail import connect

app_name = "txmail_grants"

urlpatterns = [
    path("", connect.GrantListView.as_view(), name="list"),
    path("connect/", connect.ConnectView.as_view(), name="connect"),
    path("callback/", connect.CallbackView.as_view(), name="callback"),
    path("<int:pk>/disconnect/", connect.DisconnectView.as_view(), name="disconnect"),
]
