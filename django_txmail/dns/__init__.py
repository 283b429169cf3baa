"""Sending-domain DNS checks: does the domain publish what its provider needs?

* ``records.py`` — the values: :class:`RequiredRecord` (what the provider
  wants), :class:`RecordCheck` (what was found, and the one-line fix);
* ``resolver.py`` — DNS questions through dnspython, each failure (NXDOMAIN,
  timeout, SERVFAIL, refused) turned into its own clear message;
* ``spf.py``, ``tags.py`` — reading SPF, DKIM and DMARC records by meaning
  (SPF walked through every include, as a receiver evaluates it);
* ``dmarc.py`` — the DMARC policy that applies, the organisational domain's
  when the domain publishes none;
* ``record_checks.py`` — one required record against DNS;
* ``verify.py`` — a whole domain: the provider's records (and its verification
  API where it has one), the checks, the stored result;
* ``report.py`` — the table and the JSON ``txmail_verify_domains`` prints.

This module only re-exports the values, so provider adapters can import them
without importing the checks.
"""

from django_txmail.dns.records import (
    ERROR,
    FAILED,
    OK,
    PENDING,
    WARNING,
    ProviderVerdict,
    RecordCheck,
    RequiredRecord,
)

__all__ = [
    "ERROR",
    "FAILED",
    "OK",
    "PENDING",
    "WARNING",
    "ProviderVerdict",
    "RecordCheck",
    "RequiredRecord",
]
