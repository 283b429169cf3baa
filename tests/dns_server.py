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


def _free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (dnsmasq listens on both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port


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
        # Unsigned answers: the resolver's DNSSEC validation rejects them.
        unsigned_zone_data = [txt_option(zone, "v=spf1 -all") for zone in self.servfail_zones]
        upstream = self._serve(
            binary,
            "upstream",
            [
                "--cache-size=0",
                *(f"--local=/{zone}/" for zone in self.servfail_zones),
                *unsigned_zone_data,
            ],
        )
        self.port = self._serve(
            binary,
            "resolver",
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

    def _serve(self, binary: str, role: str, options: list[str]) -> int:
        """Start one dnsmasq on a free port and wait for its answers; returns the port.

        Another process may take the port between choosing and binding it (other
        test runs share the machine): then it tries another.
        """
        for _attempt in range(5):
            port = _free_port()
            process = self._spawn(binary, role, port, options)
            if self._answering(process, port):
                return port
            self._processes.remove(process)
            log = (self.workdir / f"{role}.log").read_text()
            if "Address already in use" not in log:
                self.stop()
                raise RuntimeError(f"dnsmasq ({role}) did not start:\n{log}")
        self.stop()
        raise RuntimeError(f"dnsmasq ({role}) found no free port in 5 attempts")

    def _spawn(self, binary: str, role: str, port: int, options: list[str]) -> subprocess.Popen:
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
        with open(self.workdir / f"{role}.log", "wb") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        self._processes.append(process)
        return process

    def _answering(self, process: subprocess.Popen, port: int, timeout: float = 10.0) -> bool:
        """Wait until dnsmasq answers on ``port``; False if it exited instead."""
        deadline = time.monotonic() + timeout
        query = dns.message.make_query("ready.invalid", "TXT")
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            try:
                dns.query.udp(query, "127.0.0.1", port=port, timeout=0.2)
                return True
            except (dns.exception.Timeout, OSError):
                time.sleep(0.05)
        process.kill()
        process.wait()
        return False
