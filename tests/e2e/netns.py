"""A network namespace for a test: a client machine joined to this host by a veth pair, whose
UDP towards the host is dropped (iptables inside the namespace only), and Debian's coturn as
the TURN server on the host side of the pair. Needs root, `ip`, `iptables` and `turnserver`."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path


def available() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, iptables)"
    for tool in ("ip", "iptables", "turnserver"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/test.sh installs it)"
    return None


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=20)


class NetNs:
    """`host_ip` is this host's end of the pair; the namespace is `ns_ip`."""

    def __init__(self, tag: str, octet: int):
        self.name = f"hearth-{tag}-{secrets.token_hex(2)}"
        self.host_if, self.ns_if = f"hv{octet}{tag[:6]}", f"nv{octet}{tag[:6]}"
        self.host_ip, self.ns_ip = f"10.{octet}.0.1", f"10.{octet}.0.2"

    def up(self, *, drop_udp: bool = True) -> "NetNs":
        sh("ip", "netns", "add", self.name)
        sh("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
        sh("ip", "link", "set", self.ns_if, "netns", self.name)
        sh("ip", "addr", "add", f"{self.host_ip}/24", "dev", self.host_if)
        sh("ip", "link", "set", self.host_if, "up")
        self.exec_check("ip", "addr", "add", f"{self.ns_ip}/24", "dev", self.ns_if)
        self.exec_check("ip", "link", "set", self.ns_if, "up")
        self.exec_check("ip", "link", "set", "lo", "up")
        if drop_udp:
            # Only UDP: TCP (HTTP, ICE-TCP, TURN over TCP) still reaches the host.
            self.exec_check("iptables", "-A", "OUTPUT", "-p", "udp", "-j", "DROP")
            self.exec_check("iptables", "-A", "INPUT", "-p", "udp", "-j", "DROP")
        return self

    def exec_check(self, *argv: str) -> None:
        sh("ip", "netns", "exec", self.name, *argv)

    def popen(self, argv: list[str], **kw) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", self.name, *argv], **kw)

    def down(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)


def free_tcp_port(ip: str) -> int:
    s = socket.socket()
    s.bind((ip, 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Coturn:
    """coturn on `ip`, TURN over UDP and TCP at `port`, relaying from `ip`, authenticating with
    the TURN REST API's shared secret (as Hearth hands out credentials)."""

    def __init__(self, directory: Path, ip: str, secret: str):
        self.ip, self.secret = ip, secret
        self.port = free_tcp_port(ip)
        self.log = directory / "coturn.log"
        self.argv = [
            "turnserver", "-n", "--log-file", "stdout", "--simple-log", "--verbose",
            "--listening-ip", ip, "--listening-port", str(self.port), "--relay-ip", ip,
            "--min-port", "45000", "--max-port", "45999",
            "--use-auth-secret", "--static-auth-secret", secret, "--realm", "hearth.test",
            "--no-tls", "--no-dtls", "--no-cli", "--fingerprint", "--allow-loopback-peers",
            "--userdb", str(directory / "turndb"), "--pidfile", str(directory / "turn.pid"),
        ]
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Coturn":
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((self.ip, self.port), timeout=0.5).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        raise AssertionError(f"coturn did not start:\n{self.log.read_text()}")

    def url(self, transport: str) -> str:
        return f"turn:{self.ip}:{self.port}?transport={transport}"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
