"""Nylas domains: records from its Manage Domains API (signed as a service account),
checked against dnsmasq, then verified by the sandbox's Nylas — which resolves
them itself — over real HTTP."""

from __future__ import annotations

import base64
import json
import time
from io import StringIO

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.core.management import CommandError, call_command

from django_txmail.conf import ProviderAccount
from django_txmail.dns.verify import make_lookup, verify_domain
from django_txmail.models import SendingDomain
from django_txmail.providers.nylas.domains import (
    canonical_json,
    load_private_key,
    service_account_headers,
    signed_text,
)
from django_txmail.providers.nylas.send import NylasAdapter
from django_txmail.sending.transport import Transport
from txmail_sandbox import SandboxServer

from .conftest import SANDBOX_KEY
from .dns_zones import NYLAS_DKIM, nylas_records

KEY_ID = "sa-key-1"


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture
def nylas(txmail_sandbox, settings, private_key, dns_server):
    """The sandbox's Nylas knows our service account and asks dnsmasq when verifying."""
    txmail_sandbox.add_nylas_service_account(KEY_ID, public_pem(private_key))
    txmail_sandbox.set_dns_nameservers([("127.0.0.1", dns_server.port)])
    settings.TXMAIL = {
        "PROVIDERS": {
            "nylas": {
                "ADAPTER": "nylas",
                "API_KEY": SANDBOX_KEY,
                "API_URI": txmail_sandbox.url,
                "SERVICE_ACCOUNT_KEY_ID": KEY_ID,
                "SERVICE_ACCOUNT_PRIVATE_KEY": pem(private_key),
            }
        },
        "DNS_NAMESERVERS": [dns_server.nameserver],
        "DNS_TIMEOUT": 1,
    }
    return txmail_sandbox


def run(*args: str) -> tuple[bool, str]:
    out = StringIO()
    try:
        call_command("txmail_verify_domains", *args, stdout=out)
    except CommandError:
        return False, out.getvalue()
    return True, out.getvalue()


def results(domain: SendingDomain) -> dict[str, dict]:
    domain.refresh_from_db()
    return {r["record"]["purpose"]: r for r in domain.records["records"]}


@pytest.mark.django_db
def test_nylas_records_come_from_its_domains_api_and_nylas_verifies_them(nylas):
    domain_id = nylas.add_nylas_domain(
        "nylas-good.zone.test", nylas_records("nylas-good.zone.test")
    )
    domain = SendingDomain.objects.create(name="nylas-good.zone.test", provider="nylas")
    passed, out = run()
    assert passed, out
    found = results(domain)
    assert domain.status == "verified"
    assert domain.provider_domain_id == domain_id
    assert set(found) == {"ownership", "spf", "dkim", "feedback", "mx", "dmarc"}
    for kind in ("ownership", "spf", "dkim", "feedback", "mx"):
        assert found[kind]["status"] == "ok"
        assert found[kind]["provider_status"] == "done"
        assert found[kind]["record"]["source"] == "Nylas domains API"
    assert found["dkim"]["record"]["value"] == NYLAS_DKIM  # > 255 bytes: two TXT strings
    assert found["mx"]["record"]["required"] is False  # inbound only
    paths = [(r.method, r.path, r.status) for r in nylas.requests]
    assert paths[0] == ("GET", "/v3/admin/domains", 200)
    assert paths.count(("POST", f"/v3/admin/domains/{domain_id}/info", 200)) == 5
    assert paths.count(("POST", f"/v3/admin/domains/{domain_id}/verify", 200)) == 5
    listed = requests.get(  # the sandbox now reports the domain verified
        f"{nylas.url}/v3/admin/domains",
        headers=service_account_headers(
            KEY_ID, load_private_key(pem_of(nylas)), "GET", "/v3/admin/domains", None
        ),
        timeout=5,
    ).json()["data"][0]
    assert listed["verified_dkim"] and listed["verified_feedback"]


def pem_of(sandbox) -> str:
    from django.conf import settings

    return settings.TXMAIL["PROVIDERS"]["nylas"]["SERVICE_ACCOUNT_PRIVATE_KEY"]


@pytest.mark.django_db
def test_a_dkim_key_that_does_not_match_nylas_is_reported_and_not_sent_for_verification(nylas):
    nylas.add_nylas_domain(
        "nylas-wrong-dkim.zone.test", nylas_records("nylas-wrong-dkim.zone.test")
    )
    domain = SendingDomain.objects.create(name="nylas-wrong-dkim.zone.test", provider="nylas")
    passed, out = run("nylas-wrong-dkim.zone.test")
    assert not passed
    found = results(domain)
    assert domain.status == "failed"
    assert found["dkim"]["status"] == "failed"
    assert "does not match the provider's" in found["dkim"]["problem"]
    assert found["dkim"]["provider_status"] == ""  # DNS is wrong: no point asking Nylas
    assert found["spf"]["provider_status"] == "done"
    verified = [r.path for r in nylas.requests if r.path.endswith("/verify")]
    assert len(verified) == 4


@pytest.mark.django_db
def test_right_dns_that_nylas_cannot_see_yet_fails_with_nylas_s_message(nylas, monkeypatch):
    monkeypatch.setattr("txmail_sandbox.nylas_domains.NylasDomainsAPI.dns_timeout", 0.2)
    nylas.add_nylas_domain("nylas-good.zone.test", nylas_records("nylas-good.zone.test"))
    domain = SendingDomain.objects.create(name="nylas-good.zone.test", provider="nylas")
    nylas.set_dns_nameservers([("127.0.0.1", 9)])  # Nylas's view of DNS: nothing answers
    assert not run()[0]
    found = results(domain)
    assert domain.status == "failed"
    ownership = found["ownership"]
    assert ownership["status"] == "failed"
    assert ownership["provider_status"] == "failed"
    assert ownership["problem"].startswith("DNS looks right here, but nylas could not verify it (")
    assert "authoritative name servers" in ownership["fix"]


@pytest.mark.django_db
def test_the_domain_id_is_found_across_pages_of_the_domain_list(nylas, monkeypatch):
    monkeypatch.setattr("txmail_sandbox.nylas_domains.NylasDomainsAPI.page_size", 1)
    nylas.add_nylas_domain("first.zone.test", {})
    nylas.add_nylas_domain("second.zone.test", {})
    wanted = nylas.add_nylas_domain("nylas-good.zone.test", nylas_records("nylas-good.zone.test"))
    domain = SendingDomain.objects.create(name="nylas-good.zone.test", provider="nylas")
    assert run()[0]
    domain.refresh_from_db()
    assert domain.provider_domain_id == wanted
    pages = [r for r in nylas.requests if r.path == "/v3/admin/domains"]
    assert len(pages) == 3


@pytest.mark.django_db
def test_a_stored_domain_id_is_used_without_listing(nylas):
    domain_id = nylas.add_nylas_domain(
        "nylas-good.zone.test", nylas_records("nylas-good.zone.test")
    )
    SendingDomain.objects.create(
        name="nylas-good.zone.test", provider="nylas", provider_domain_id=domain_id
    )
    assert run()[0]
    assert not [r for r in nylas.requests if r.path == "/v3/admin/domains"]


@pytest.mark.django_db
def test_a_domain_nylas_does_not_have_says_to_register_it(nylas):
    domain = SendingDomain.objects.create(name="nylas-good.zone.test", provider="nylas")
    passed, out = run()
    assert not passed
    domain.refresh_from_db()
    assert domain.status == "pending"
    assert domain.records["problems"] == [
        "nylas has no domain nylas-good.zone.test: register it in the provider's dashboard "
        "(or its domains API), then run the check again."
    ]


@pytest.mark.django_db
def test_without_a_service_account_the_report_says_what_to_configure(nylas, settings):
    account = dict(settings.TXMAIL["PROVIDERS"]["nylas"])
    del account["SERVICE_ACCOUNT_PRIVATE_KEY"]
    settings.TXMAIL = {**settings.TXMAIL, "PROVIDERS": {"nylas": account}}
    domain = SendingDomain.objects.create(name="nylas-good.zone.test", provider="nylas")
    assert not run()[0]
    domain.refresh_from_db()
    assert domain.records["problems"][0].startswith(
        "TXMAIL['PROVIDERS']['nylas'] has no SERVICE_ACCOUNT_KEY_ID and "
        "SERVICE_ACCOUNT_PRIVATE_KEY: Nylas gives a domain's DNS records only to its service "
        "account."
    )
    assert nylas.requests == []


@pytest.mark.django_db
def test_a_key_nylas_does_not_know_is_reported_with_what_to_check(nylas, settings):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    account = dict(settings.TXMAIL["PROVIDERS"]["nylas"], SERVICE_ACCOUNT_PRIVATE_KEY=pem(other))
    settings.TXMAIL = {**settings.TXMAIL, "PROVIDERS": {"nylas": account}}
    SendingDomain.objects.create(name="nylas-good.zone.test", provider="nylas")
    passed, out = run()
    assert not passed
    assert "Unauthorized: X-Nylas-Signature does not match the request." in out
    assert "Check SERVICE_ACCOUNT_KEY_ID and SERVICE_ACCOUNT_PRIVATE_KEY" in out
    assert "PRIVATE KEY" not in out.replace("SERVICE_ACCOUNT_PRIVATE_KEY", "")


@pytest.mark.django_db
def test_verify_domain_can_be_called_from_code(nylas):
    nylas.add_nylas_domain("nylas-good.zone.test", nylas_records("nylas-good.zone.test"))
    domain = SendingDomain.objects.create(name="nylas-good.zone.test", provider="nylas")
    with Transport() as transport:
        report = verify_domain(domain, make_lookup(), transport)
    assert report.passed
    assert report.status == "verified"


# The signature itself.


def test_the_signed_text_is_canonical_json_of_method_nonce_path_payload_and_timestamp():
    body = canonical_json({"type": "dkim", "a": 1}).encode()
    assert body == b'{"a":1,"type":"dkim"}'
    text = signed_text("POST", "/v3/admin/domains/d1/info", 1742932766, "n0nce", body)
    assert text == (
        b'{"method":"post","nonce":"n0nce","path":"/v3/admin/domains/d1/info",'
        b'"payload":"{\\"a\\":1,\\"type\\":\\"dkim\\"}","timestamp":1742932766}'
    )
    assert b"payload" not in signed_text("GET", "/v3/admin/domains", 1, "n", None)


def test_the_signature_is_rsa_sha256_over_the_signed_text(private_key):
    headers = service_account_headers(
        KEY_ID, private_key, "POST", "/p", b"{}", timestamp=1700000000, nonce="abc"
    )
    assert headers["X-Nylas-Kid"] == KEY_ID
    assert headers["X-Nylas-Timestamp"] == "1700000000"
    assert headers["X-Nylas-Nonce"] == "abc"
    private_key.public_key().verify(  # raises InvalidSignature if not
        base64.b64decode(headers["X-Nylas-Signature"]),
        signed_text("POST", "/p", 1700000000, "abc", b"{}"),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    fresh = service_account_headers(KEY_ID, private_key, "GET", "/p", None)
    assert abs(int(fresh["X-Nylas-Timestamp"]) - time.time()) < 5
    assert len(fresh["X-Nylas-Nonce"]) == 20 and fresh["X-Nylas-Nonce"].isalnum()


def test_the_adapter_s_request_carries_the_exact_bytes_it_signed(private_key):
    account = ProviderAccount(
        name="nylas",
        adapter="django_txmail.providers.nylas.NylasAdapter",
        api_uri="https://api.us.nylas.com",
        credentials={
            "SERVICE_ACCOUNT_KEY_ID": KEY_ID,
            "SERVICE_ACCOUNT_PRIVATE_KEY": pem(private_key),
        },
    )
    request = NylasAdapter(account).build_verify_domain("d/1", "spf")
    assert request.url == "https://api.us.nylas.com/v3/admin/domains/d%2F1/verify"
    assert request.body == b'{"type":"spf"}'
    assert "Authorization" not in request.headers
    text = signed_text(
        "POST",
        "/v3/admin/domains/d%2F1/verify",
        int(request.headers["X-Nylas-Timestamp"]),
        request.headers["X-Nylas-Nonce"],
        request.body,
    )
    private_key.public_key().verify(
        base64.b64decode(request.headers["X-Nylas-Signature"]),
        text,
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    assert pem(private_key) not in repr(request)


def test_a_private_key_that_is_not_pem_is_refused_without_echoing_it():
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured) as caught:
        load_private_key("not-a-key-but-a-secret-s3cr3t")
    assert "s3cr3t" not in str(caught.value)
    assert "copy the 'private_key' field of Nylas's service account file" in str(caught.value)


class TestSandboxSignatureCheck:
    """The sandbox refuses what Nylas refuses: 401, saying why."""

    @pytest.fixture
    def domain_id(self, txmail_sandbox, private_key):
        txmail_sandbox.add_nylas_service_account(KEY_ID, public_pem(private_key))
        return txmail_sandbox.add_nylas_domain(
            "nylas-good.zone.test", nylas_records("nylas-good.zone.test")
        )

    def post(self, sandbox, domain_id, headers, body=b'{"type":"spf"}'):
        path = f"/v3/admin/domains/{domain_id}/info"
        answer = requests.post(f"{sandbox.url}{path}", data=body, headers=headers, timeout=5)
        return answer.status_code, answer.json()

    def signed(self, key, domain_id, body=b'{"type":"spf"}', **kwargs):
        path = f"/v3/admin/domains/{domain_id}/info"
        return service_account_headers(KEY_ID, key, "POST", path, body, **kwargs)

    def test_a_well_signed_request_is_answered(self, txmail_sandbox, domain_id, private_key):
        status, body = self.post(txmail_sandbox, domain_id, self.signed(private_key, domain_id))
        assert status == 200
        assert body["data"]["attempt"]["options"]["value"] == "v=spf1 include:spf.nylas.test ~all"
        assert body["data"]["status"] == "pending"

    def test_missing_headers(self, txmail_sandbox, domain_id, private_key):
        headers = self.signed(private_key, domain_id)
        del headers["X-Nylas-Nonce"]
        status, body = self.post(txmail_sandbox, domain_id, headers)
        assert status == 401
        assert body["error"] == {
            "type": "unauthorized",
            "message": "Unauthorized: Missing service account headers: X-Nylas-Nonce.",
        }

    def test_a_signature_over_another_body(self, txmail_sandbox, domain_id, private_key):
        headers = self.signed(private_key, domain_id, body=b'{"type":"dkim"}')
        status, body = self.post(txmail_sandbox, domain_id, headers)
        assert (status, body["error"]["message"]) == (
            401,
            "Unauthorized: X-Nylas-Signature does not match the request.",
        )

    def test_a_stale_timestamp(self, txmail_sandbox, domain_id, private_key):
        headers = self.signed(private_key, domain_id, timestamp=int(time.time()) - 301)
        status, body = self.post(txmail_sandbox, domain_id, headers)
        assert status == 401
        assert "is not within 300 s of the server's time" in body["error"]["message"]

    def test_a_reused_nonce(self, txmail_sandbox, domain_id, private_key):
        headers = self.signed(private_key, domain_id, nonce="same-nonce-twice")
        assert self.post(txmail_sandbox, domain_id, headers)[0] == 200
        headers = self.signed(private_key, domain_id, nonce="same-nonce-twice")
        status, body = self.post(txmail_sandbox, domain_id, headers)
        assert (status, body["error"]["message"]) == (
            401,
            "Unauthorized: X-Nylas-Nonce 'same-nonce-twice' was already used.",
        )

    def test_an_unknown_key_id(self, txmail_sandbox, domain_id, private_key):
        headers = self.signed(private_key, domain_id) | {"X-Nylas-Kid": "someone-else"}
        status, body = self.post(txmail_sandbox, domain_id, headers)
        assert status == 401
        assert "Unknown service account key id 'someone-else'" in body["error"]["message"]

    def test_an_api_key_is_not_a_service_account(self, txmail_sandbox, domain_id):
        headers = {"Authorization": f"Bearer {SANDBOX_KEY}"}
        assert self.post(txmail_sandbox, domain_id, headers)[0] == 401

    def test_an_unknown_verification_type(self, txmail_sandbox, domain_id, private_key):
        body = json.dumps({"type": "arc"}).encode()
        headers = self.signed(private_key, domain_id, body=body)
        status, answer = self.post(txmail_sandbox, domain_id, headers, body=body)
        assert status == 400
        assert answer["error"]["message"].startswith("Unknown verification type 'arc'")

    def test_a_timestamp_of_non_ascii_digits_is_refused(
        self, txmail_sandbox, domain_id, private_key
    ):
        headers = self.signed(private_key, domain_id) | {"X-Nylas-Timestamp": "²"}
        status, body = self.post(txmail_sandbox, domain_id, headers)
        assert status == 401
        assert body["error"]["message"].startswith(
            "Unauthorized: X-Nylas-Timestamp '²' is not within 300 s of the server's time"
        )

    def test_a_nonce_is_remembered_as_long_as_its_timestamp_is_accepted(self, private_key):
        now = [1_700_000_000.0]
        with SandboxServer(wall_clock=lambda: now[0]) as sandbox:
            sandbox.add_nylas_service_account(KEY_ID, public_pem(private_key))
            domain_id = sandbox.add_nylas_domain(
                "nylas-good.zone.test", nylas_records("nylas-good.zone.test")
            )
            # Signed for 299 s ahead, which the allowed clock skew accepts.
            headers = self.signed(private_key, domain_id, timestamp=int(now[0]) + 299)
            assert self.post(sandbox, domain_id, headers)[0] == 200
            now[0] += 301  # more than the skew after it was first seen
            status, body = self.post(sandbox, domain_id, headers)
            assert (status, body["error"]["message"]) == (
                401,
                f"Unauthorized: X-Nylas-Nonce {headers['X-Nylas-Nonce']!r} was already used.",
            )
            now[0] += 299  # the timestamp itself is now too old
            status, body = self.post(sandbox, domain_id, headers)
            assert status == 401
            assert "is not within 300 s of the server's time" in body["error"]["message"]
