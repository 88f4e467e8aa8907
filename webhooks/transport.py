"""One webhook POST, with the standard library only (http.client, ssl, socket).

The host name is resolved here and every address it resolves to is checked; the connection
is then made to one checked address (never to the name again, which a second lookup could
point elsewhere: DNS rebinding), and the peer of the connected socket is checked once more.
TLS still verifies the certificate against the host name. Redirects are answers like any
other non-2xx: never followed. The whole exchange is bounded by one deadline.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

USER_AGENT = "Egret-Webhooks/1"
READ_LIMIT = 64 * 1024  # of the receiver's answer; nobody reads it, the socket is drained a bit


class Refused(Exception):
    """The URL may not be delivered to (scheme, address); not worth retrying sooner."""


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def address_forbidden(address: str) -> bool:
    """Loopback, private, link-local, multicast, reserved or unspecified (IPv4-mapped IPv6
    addresses are judged as the IPv4 address they carry)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified or not ip.is_global)


def literal_address(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def check_url(url: str, *, allow_http: bool, allow_private: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or (parts.scheme == "http" and not allow_http):
        raise Refused("only https:// URLs are delivered to.")
    if not parts.hostname:
        raise Refused("the URL has no host.")
    literal = literal_address(parts.hostname)
    if literal and not allow_private and address_forbidden(literal):
        raise Refused(f"{literal} is a loopback, private, link-local or multicast address.")


def resolve(host: str, port: int, *, allow_private: bool) -> list[tuple]:
    """getaddrinfo's answers for (host, port); refused when any address is not public (a
    name pointing at one internal address among public ones is not a webhook receiver)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve {host}: {exc.strerror}") from None
    if not allow_private:
        for info in infos:
            address = info[4][0]
            if address_forbidden(address):
                raise Refused(f"{host} resolves to {address}, a loopback, private, "
                              f"link-local or multicast address.")
    return infos


class _PinnedConnection(http.client.HTTPConnection):
    """Connects to the checked address instead of resolving the host again."""

    def __init__(self, host: str, port: int, infos: list[tuple], timeout: float,
                 allow_private: bool, tls: ssl.SSLContext | None) -> None:
        super().__init__(host, port, timeout=timeout)
        self._infos, self._allow_private, self._tls = infos, allow_private, tls

    def connect(self) -> None:
        last: OSError | None = None
        for family, kind, proto, _, sockaddr in self._infos:
            sock = socket.socket(family, kind, proto)
            sock.settimeout(self.timeout)
            try:
                sock.connect(sockaddr)
            except OSError as exc:
                sock.close()
                last = exc
                continue
            peer = sock.getpeername()[0]
            if not self._allow_private and address_forbidden(peer):
                sock.close()
                raise Refused(f"connected to {peer}, a non-public address.")
            self.sock = (self._tls.wrap_socket(sock, server_hostname=self.host)
                         if self._tls else sock)
            return
        raise last or OSError(f"cannot connect to {self.host}")


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float,
         allow_http: bool, allow_private: bool) -> Outcome:
    started = time.monotonic()
    try:
        status = _post(url, body, headers, started + timeout, allow_http, allow_private)
    except Refused as exc:
        return Outcome(None, f"refused: {exc}", time.monotonic() - started)
    except (TimeoutError, socket.timeout):
        return Outcome(None, f"timed out after {timeout:g} seconds", time.monotonic() - started)
    except ssl.SSLError as exc:
        return Outcome(None, f"TLS error: {exc.reason or exc}", time.monotonic() - started)
    except (OSError, http.client.HTTPException) as exc:
        return Outcome(None, f"connection error: {exc or type(exc).__name__}",
                       time.monotonic() - started)
    return Outcome(status, "" if 200 <= status < 300 else f"answered HTTP {status}",
                   time.monotonic() - started)


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError()
    return left


def _post(url: str, body: bytes, headers: dict[str, str], deadline: float,
          allow_http: bool, allow_private: bool) -> int:
    check_url(url, allow_http=allow_http, allow_private=allow_private)
    parts = urlsplit(url)
    tls = ssl.create_default_context() if parts.scheme == "https" else None
    port = parts.port or (443 if tls else 80)
    infos = resolve(parts.hostname, port, allow_private=allow_private)
    connection = _PinnedConnection(parts.hostname, port, infos, _remaining(deadline),
                                   allow_private, tls)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", path, body=body, headers={
            **headers, "Content-Type": "application/json", "User-Agent": USER_AGENT,
            "Content-Length": str(len(body))})
        sock = connection.sock  # getresponse() lets go of it when the server closes
        sock.settimeout(_remaining(deadline))
        response = connection.getresponse()
        sock.settimeout(_remaining(deadline))
        response.read(READ_LIMIT)
        _remaining(deadline)
        return response.status
    finally:
        connection.close()
