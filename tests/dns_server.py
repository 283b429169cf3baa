"""A real DNS server on loopback for the domain-check tests: Debian's dnsmasq.

:class:`DnsServer` starts dnsmasq on 127.0.0.1 and a free port, serving the
records it is given, and makes the failures a check must tell apart happen
for real:

* **NXDOMAIN** — every zone in ``local_zones`` is answered by dnsmasq alone
  (``--local``): a name in it that has no record does not exist;
* **timeout** — names under ``timeout_zones`` are forwarded to a UDP socket
  that never answers;
* **SERVFAIL** — dnsmasq validates DNSSEC (``--dnssec`` with the root trust
  anchor) on everything it forwards to its default upstream, a second
  dnsmasq serving ``servfail_zones`` unsigned: their answers are bogus, so
  the resolver answers SERVFAIL, as a validating resolver does for a domain
  with a broken DNSSEC delegation (a dead upstream does not give SERVFAIL:
  dnsmasq just stays silent, which is the timeout case);
* **REFUSED** — any other name: the upstream serves nothing else.

dnsmasq comes from the ``dnsmasq-base`` package (no system service), which
``.ci/run`` installs. Without it the tests are skipped with that advice,
except under CI, where it is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import pytest

#: The root zone's KSK-2017 (DS digest), as distributed with dnsmasq's trust-anchors.conf.
ROOT_TRUST_ANCHOR = ".,20326,8,2,E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D"


def dnsmasq_path() -> str:
    """The dnsmasq binary, or a skip (a failure under CI) saying how to get it."""
    found = shutil.which("dnsmasq") or next(
        (p for p in ("/usr/sbin/dnsmasq", "/sbin/dnsmasq") if os.access(p, os.X_OK)), None
    )
    if found:
        return found
    message = (
        "dnsmasq is not installed; the DNS tests need it: apt-get install dnsmasq-base "
        "(no service is started)."
    )
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def txt_option(name: str, value: str) -> str:
    """``--txt-record`` for ``value``, split into 255-byte strings as DNS requires
    (dnsmasq takes each comma-separated part as one string)."""
    if "," in value:
        raise ValueError("dnsmasq cannot serve a comma inside a TXT string")
    chunks = [value[i : i + 255] for i in range(0, len(value), 255)] or [""]
    return f"--txt-record={name},{','.join(chunks)}"


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DnsServer:
    """dnsmasq serving ``txt`` / ``cname`` / ``mx`` records (lists of ``(name,
    value)``, MX ``(name, host, preference)``); see the module docstring."""

    def __init__(
        self,
        workdir: Path,
        *,
        txt: Iterable[tuple[str, str]] = (),
        cname: Iterable[tuple[str, str]] = (),
        mx: Iterable[tuple[str, str, int]] = (),
        local_zones: Iterable[str] = (),
        timeout_zones: Iterable[str] = (),
        servfail_zones: Iterable[str] = (),
    ) -> None:
        self.workdir = workdir
        self.records = [txt_option(name, value) for name, value in txt]
        self.records += [f"--cname={name},{target}" for name, target in cname]
        self.records += [f"--mx-host={name},{host},{pref}" for name, host, pref in mx]
        self.local_zones = list(local_zones)
        self.timeout_zones = list(timeout_zones)
        self.servfail_zones = list(servfail_zones)
        self.port = 0
        self._processes: list[subprocess.Popen] = []
        self._blackhole: socket.socket | None = None

    @property
    def nameserver(self) -> str:
        """``"127.0.0.1:<port>"``, for ``--nameserver`` and ``TXMAIL["DNS_NAMESERVERS"]``."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> DnsServer:
        binary = dnsmasq_path()
        self._blackhole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._blackhole.bind(("127.0.0.1", 0))
        silent = self._blackhole.getsockname()[1]
        upstream = _free_udp_port()
        # Unsigned answers: the resolver's DNSSEC validation rejects them.
        unsigned_zone_data = [txt_option(zone, "v=spf1 -all") for zone in self.servfail_zones]
        self._spawn(
            binary,
            "upstream",
            upstream,
            [
                "--cache-size=0",
                *(f"--local=/{zone}/" for zone in self.servfail_zones),
                *unsigned_zone_data,
            ],
        )
        self.port = _free_udp_port()
        self._spawn(
            binary,
            "resolver",
            self.port,
            [
                *self.records,
                *(f"--local=/{zone}/" for zone in self.local_zones),
                *(f"--server=/{zone}/127.0.0.1#{silent}" for zone in self.timeout_zones),
                f"--server=127.0.0.1#{upstream}",
                "--dnssec",
                f"--trust-anchor={ROOT_TRUST_ANCHOR}",
                "--dnssec-check-unsigned",
            ],
        )
        for port in (upstream, self.port):
            self._wait_until_answering(port)
        return self

    def stop(self) -> None:
        for process in self._processes:
            process.terminate()
        for process in self._processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes.clear()
        if self._blackhole is not None:
            self._blackhole.close()
            self._blackhole = None

    def __enter__(self) -> DnsServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _spawn(self, binary: str, role: str, port: int, options: list[str]) -> None:
        command = [
            binary,
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            f"--port={port}",
            f"--pid-file={self.workdir / f'{role}.pid'}",
            "--log-facility=-",
            *(["--user=root"] if os.geteuid() == 0 else []),
            *options,
        ]
        log = open(self.workdir / f"{role}.log", "wb")  # noqa: SIM115 (kept for the process)
        try:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        self._processes.append(process)

    def _wait_until_answering(self, port: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        query = dns.message.make_query("ready.invalid", "TXT")
        while time.monotonic() < deadline:
            dead = [p for p in self._processes if p.poll() is not None]
            if dead:
                self.stop()
                logs = "\n".join(p.read_text() for p in sorted(self.workdir.glob("*.log")))
                raise RuntimeError(f"dnsmasq exited at start:\n{logs}")
            try:
                dns.query.udp(query, "127.0.0.1", port=port, timeout=0.2)
                return
            except (dns.exception.Timeout, OSError):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dnsmasq did not answer on 127.0.0.1:{port} within {timeout} s")
