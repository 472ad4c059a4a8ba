"""Where the server listens: the socket, its URL, and the Host names it answers to."""

from __future__ import annotations

import errno
import ipaddress
import socket
from dataclasses import replace
from urllib.parse import urlsplit

from asst_magic.server.api.errors import StartupError
from asst_magic.server.api.guard import host_name
from asst_magic.server.config import ServerConfig

__all__ = ["advertised", "allowed_hosts", "base_url", "bind", "exposure_warning", "is_loopback"]


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket on ``host:port`` (port 0 picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not the default 0: asyncio turns on TCP_NODELAY only for sockets that
    # say they are TCP, and without it every keep-alive request waits ~40 ms for an ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StartupError(_bind_problem(host, port, exc)) from exc
    return sock


def _bind_problem(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"Port {port} is in use on {host}: pass another --port, or --port 0 for a free one."
    if exc.errno == errno.EACCES:
        return f"No permission to listen on port {port} of {host}: pass a --port above 1023."
    return f"Cannot listen on {host}:{port} ({exc.strerror}): check --host and --port."


def base_url(sock: socket.socket) -> str:
    """``http://HOST:PORT/v1`` for a bound socket."""
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/v1"


def advertised(config: ServerConfig, sock: socket.socket) -> ServerConfig:
    """``config`` with ``replica_url`` set: as given, else where ``sock`` listens.

    A wildcard address (0.0.0.0, ::) is replaced by this machine's host name, which
    the other replicas can usually resolve; else pass ``--advertise-url``.
    """
    if config.replica_url:
        return config
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = socket.gethostname()
    elif ":" in host:
        host = f"[{host}]"
    return replace(config, replica_url=f"http://{host}:{port}")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(config: ServerConfig) -> frozenset[str] | None:
    """The ``Host`` names to answer to: the bound address, ``localhost`` on loopback,
    ``config.allowed_hosts`` and the host of ``--advertise-url`` (the other replicas
    forward to it); ``None`` (any) on a wildcard bind with no list given."""
    extra = {host_name(h) for h in config.allowed_hosts}
    if config.host in ("0.0.0.0", "::", "") and not extra:
        return None
    names = {host_name(config.host), *extra}
    if config.replica_url:
        names.add(host_name(urlsplit(config.replica_url).netloc))
    if is_loopback(config.host):
        names |= {"localhost", "127.0.0.1", "::1"}
    return frozenset(names)


def exposure_warning(host: str) -> str | None:
    """What to tell the user when ``host`` is not loopback (plain HTTP, token in clear)."""
    if is_loopback(host):
        return None
    return (
        f"listening on {host}, beyond this machine, over plain HTTP: the token and every "
        "conversation cross the network unencrypted. Put it behind a TLS proxy, or bind "
        "127.0.0.1 (the default)."
    )
