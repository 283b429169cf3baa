"""The adapters' side of webhook registration (``txmail_register_webhooks``):
the request the Nylas adapter builds, how it reads the answer, and adapters
without a registration API. Against the sandbox's webhooks API, end to end:
``tests/test_webhooks_e2e.py``."""

from __future__ import annotations

import json

import pytest

from django_txmail.conf import ProviderAccount
from django_txmail.exceptions import ProviderAPIError, UnsupportedFeature
from django_txmail.providers import Adapter, ProviderResponse
from django_txmail.providers.nylas.send import NylasAdapter
from django_txmail.providers.nylas.webhooks import TYPES


def nylas_adapter():
    account = ProviderAccount("nylas", "nylas", "https://api.us.nylas.com", {"API_KEY": "key"})
    return NylasAdapter(account)


def test_the_nylas_adapter_builds_the_registration_request():
    request = nylas_adapter().build_register_webhook("https://app.example/txmail/webhooks/nylas/")
    assert (request.method, request.url) == ("POST", "https://api.us.nylas.com/v3/webhooks")
    assert request.headers["Authorization"] == "Bearer key"
    body = json.loads(request.body)
    assert body["webhook_url"] == "https://app.example/txmail/webhooks/nylas/"
    assert body["trigger_types"] == list(TYPES)
    assert body["description"] == "django-txmail (nylas)"


def test_the_nylas_adapter_reads_the_new_webhook_and_its_errors():
    data = {"id": "wh1", "webhook_url": "u", "webhook_secret": "whsec-new", "trigger_types": []}
    webhook = nylas_adapter().parse_register_webhook(
        ProviderResponse(200, {}, json.dumps({"request_id": "r", "data": data}).encode())
    )
    assert (webhook.id, webhook.url, webhook.secret) == ("wh1", "u", "whsec-new")
    assert "whsec-new" not in repr(webhook)
    error = {"request_id": "r", "error": {"type": "invalid_request_error", "message": "bad url"}}
    with pytest.raises(ProviderAPIError, match="bad url"):
        nylas_adapter().parse_register_webhook(
            ProviderResponse(400, {}, json.dumps(error).encode())
        )
    with pytest.raises(ProviderAPIError, match="no data.id"):
        nylas_adapter().parse_register_webhook(ProviderResponse(200, {}, b'{"data": {}}'))


def test_adapters_without_a_registration_api_say_so():
    account = ProviderAccount("other", "x.Other", "https://api.example", {})
    with pytest.raises(UnsupportedFeature, match="webhook registration"):
        Adapter(account).build_register_webhook("https://app.example/hook/")


def test_the_nylas_adapter_lists_and_deletes_webhooks():
    adapter = nylas_adapter()
    listing = adapter.build_list_webhooks()
    assert (listing.method, listing.url) == ("GET", "https://api.us.nylas.com/v3/webhooks")
    data = [{"id": "wh1", "webhook_url": "https://app.example/h/", "trigger_types": ["a"]}]
    body = json.dumps({"request_id": "r", "data": data}).encode()
    [webhook] = adapter.parse_list_webhooks(ProviderResponse(200, {}, body))
    assert (webhook.id, webhook.url, webhook.secret, webhook.triggers) == (
        "wh1",
        "https://app.example/h/",
        "",
        ("a",),
    )
    delete = adapter.build_delete_webhook("wh/1")
    assert (delete.method, delete.url) == ("DELETE", "https://api.us.nylas.com/v3/webhooks/wh%2F1")
    assert adapter.parse_delete_webhook(ProviderResponse(200, {}, b"{}")) is None
    missing = {"request_id": "r", "error": {"type": "not_found_error", "message": "gone"}}
    with pytest.raises(ProviderAPIError):
        adapter.parse_delete_webhook(ProviderResponse(404, {}, json.dumps(missing).encode()))
