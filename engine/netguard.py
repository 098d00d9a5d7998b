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
import socket
import sys
import threading

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


def allow_host(host: str) -> None:
    """Allow one more host (the office server): its name and the addresses it resolves to."""
    if not host:
        return
    host = host.split(":")[0].strip("[]").lower()
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
