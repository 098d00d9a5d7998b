"""No network at run time: a Python audit hook that refuses outbound connections.

Installed once per process by :func:`install` (the CLI and the desktop call it at start-up).
Allowed: Unix sockets, loopback (127.0.0.0/8, ::1, ``localhost``) and the configured office
server. Everything else raises :class:`NetworkBlocked` (an ``OSError``) before the connection is
attempted, and is recorded in :data:`blocked` (host and port only, never payload).
"""
from __future__ import annotations

import ipaddress
import logging
import os
import re
import socket
import sys
import threading
from urllib.parse import urlsplit

log = logging.getLogger(__name__)


class NetworkBlocked(ConnectionRefusedError):
    """Raised instead of an outbound connection Madoguchi does not allow."""


_allowed_hosts: set[str] = set()
_installed = False
_lock = threading.Lock()
blocked: list[tuple[str, object]] = []
allowed_log: list[tuple[str, object]] = []


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def is_allowed(host: str) -> bool:
    host = str(host).strip("[]").lower()
    return _is_loopback(host) or host in _allowed_hosts


def server_host(value: str) -> str:
    """The host in an ``office_server`` value: ``pg01``, ``pg01:5433``, ``[::1]:5432``,
    ``postgresql://user@pg01:5432/db`` or a libpq ``host=pg01 …`` string."""
    value = (value or "").strip()
    if "://" in value:
        return (urlsplit(value).hostname or "").lower()
    m = re.search(r"(?:^|\s)host\s*=\s*'?([^\s',]+)", value)
    if m:
        return m.group(1).lower()
    if value.startswith("["):
        return value[1:value.find("]")].lower() if "]" in value else value.strip("[]").lower()
    return (value.rsplit(":", 1)[0] if value.count(":") == 1 else value).lower()


def allow_host(host: str) -> None:
    """Allow one more host (the office server): its name and the addresses it resolves to."""
    host = server_host(host)
    if not host:
        return
    with _lock:
        _allowed_hosts.add(host)
    try:
        for info in socket.getaddrinfo(host, None):
            _allowed_hosts.add(str(info[4][0]).lower())
    except OSError:
        pass


def _hook(event: str, args) -> None:
    if event == "socket.connect" or event == "socket.sendto":
        sock, address = args[0], args[-1]
        family = getattr(sock, "family", None)
        if family is not None and family not in (socket.AF_INET, socket.AF_INET6):
            return  # AF_UNIX, netlink …
        host = address[0] if isinstance(address, tuple) and address else str(address)
        port = address[1] if isinstance(address, tuple) and len(address) > 1 else None
        if is_allowed(host):
            allowed_log.append((str(host), port))
            return
        blocked.append((str(host), port))
        log.warning("blocked outbound connection to %s:%s", host, port)
        raise NetworkBlocked(f"Madoguchi blocks network connections at run time (attempted {host}:{port})")
    if event == "socket.getaddrinfo":
        host = args[0]
        if host is None or isinstance(host, (bytes, bytearray)):
            host = (host or b"").decode(errors="replace") if isinstance(host, (bytes, bytearray)) else ""
        if is_allowed(host):
            return
        try:
            ipaddress.ip_address(host)
            return  # a literal address: the connect check decides
        except ValueError:
            pass
        blocked.append((str(host), args[1] if len(args) > 1 else None))
        raise NetworkBlocked(f"Madoguchi blocks network look-ups at run time (attempted {host})")


def install(office_server: str = "") -> None:
    """Install the hook (idempotent) and keep third-party libraries offline."""
    global _installed
    for k, v in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("HF_HUB_DISABLE_TELEMETRY", "1"),
                 ("DO_NOT_TRACK", "1")):
        os.environ.setdefault(k, v)
    allow_host(office_server)
    with _lock:
        if _installed:
            return
        sys.addaudithook(_hook)
        _installed = True


def resolve_allowed(host: str, port=None) -> str:
    """The address to connect to for ``host``, after the guard's checks. For connections made
    outside Python's socket module (libpq opens its own sockets): the name is resolved here,
    through the audited ``getaddrinfo``, and a host the guard refuses raises NetworkBlocked even
    when the hook is not installed in this process."""
    name = str(host).strip("[]").lower()
    if not is_allowed(name):
        blocked.append((name, port))
        log.warning("blocked outbound connection to %s:%s", name, port)
        raise NetworkBlocked(f"Madoguchi connects only to the configured office server (attempted {name}:{port})")
    infos = socket.getaddrinfo(name, int(port) if port else None, type=socket.SOCK_STREAM)
    addr = str(infos[0][4][0])
    if not is_allowed(addr):
        blocked.append((addr, port))
        raise NetworkBlocked(f"{name} resolved to {addr}, which is not the configured office server")
    allowed_log.append((name, port))
    return addr
