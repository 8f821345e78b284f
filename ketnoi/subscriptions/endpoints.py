"""Where the server may send a rest-hook: a request the server makes to an address a client chose
(server-side request forgery, THREATS.md). ADR 0025.

``KETNOI_SUBSCRIPTION_ENDPOINTS`` is the deployment's allow-list: comma-separated networks
(``10.20.0.0/16``, ``127.0.0.1``) and host names (``hook.soyte.vn``, ``*.soyte.vn``). With an
allow-list, an endpoint is allowed when its host name is listed or every address it resolves to is
in a listed network; a listed host name still never reaches loopback, link-local (cloud metadata,
169.254.169.254) or unspecified addresses unless a listed network holds them. Without one, only
global (public) addresses are allowed: no loopback, private, link-local, shared, multicast or
reserved address.

The check runs when the Subscription is written (a 400 names the reason) and again before each
delivery, against the addresses resolved then; the request goes to the address that was checked
(the host name travels in ``Host`` and TLS SNI), so a name that re-resolves elsewhere (DNS
rebinding) between the check and the connection reaches nothing new.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Refused(Exception):
    """An endpoint the server will not call; ``en``/``vi``: why, for the subscriber."""

    def __init__(self, en: str, vi: str) -> None:
        super().__init__(en)
        self.en, self.vi = en, vi


@dataclass(frozen=True, slots=True)
class AllowList:
    networks: tuple[Network, ...] = ()
    hosts: tuple[str, ...] = ()  # lower case; "*.x.vn" allows every name under x.vn

    @classmethod
    def parse(cls, text: str) -> AllowList:
        networks: list[Network] = []
        hosts: list[str] = []
        for entry in (e.strip() for e in text.split(",")):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.append(entry.lower().rstrip("."))
        return cls(tuple(networks), tuple(hosts))

    @property
    def empty(self) -> bool:
        return not self.networks and not self.hosts

    def names(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(host == h or (h.startswith("*.") and host.endswith(h[1:])) for h in self.hosts)

    def holds(self, address: Address) -> bool:
        return any(address in n for n in self.networks if n.version == address.version)


@dataclass(frozen=True, slots=True)
class Target:
    """Where to connect: ``url`` with the checked address in place of the host name."""

    url: str
    host: str  # the Host header (name and port as the endpoint wrote them)
    sni: str  # the TLS server name (https)


def check_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) endpoint, or :class:`Refused`."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Refused(f"'{url[:100]}' is not a valid URL", f"'{url[:100]}' không phải URL hợp lệ") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused(
            f"A rest-hook endpoint is an http(s) URL with a host, not '{url[:100]}'",
            f"Điểm nhận rest-hook phải là URL http(s) có máy chủ, không phải '{url[:100]}'",
        )
    if parts.username or parts.password:
        raise Refused(
            "A rest-hook endpoint may not carry a user name or password; use channel.header",
            "Điểm nhận rest-hook không được chứa tên/mật khẩu; hãy dùng channel.header",
        )
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def allowed(address: Address, host: str, allow: AllowList) -> bool:
    if allow.holds(address):
        return True
    never = address.is_loopback or address.is_link_local or address.is_unspecified or address.is_multicast
    if allow.names(host) and not never:
        return True
    return allow.empty and address.is_global and not address.is_multicast


def resolve(host: str, port: int) -> list[Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise Refused(f"The endpoint host '{host}' does not resolve", f"Không phân giải được máy '{host}'") from None
    return list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in infos))


def target(url: str, allow: AllowList) -> Target:
    """Check ``url`` now and say where to connect; :class:`Refused` when any address is not allowed."""
    scheme, host, port = check_url(url)
    addresses = resolve(host, port)
    _check(host, addresses, allow)
    parts = urlsplit(url)
    chosen = addresses[0]
    literal = f"[{chosen}]" if chosen.version == 6 else str(chosen)
    netloc = f"{literal}:{port}"
    host_header = parts.netloc.rpartition("@")[2]
    return Target(urlunsplit((scheme, netloc, parts.path or "/", parts.query, "")), host_header, host)


def _check(host: str, addresses: list[Address], allow: AllowList) -> None:
    bad = [a for a in addresses if not allowed(a, host, allow)]
    if bad or not addresses:
        raise Refused(
            f"The endpoint {host} ({bad[0] if bad else 'no address'}) is not an allowed destination: "
            "ask the operator to add it to KETNOI_SUBSCRIPTION_ENDPOINTS",
            f"Điểm nhận {host} ({bad[0] if bad else 'không có địa chỉ'}) không nằm trong danh sách cho phép: "
            "hãy đề nghị quản trị thêm vào KETNOI_SUBSCRIPTION_ENDPOINTS",
        )


def admissible(url: str, allow: AllowList) -> None:
    """The check when a Subscription is written: :class:`Refused` for an endpoint that is not an
    allowed destination now. A name that does not resolve yet is accepted when the deployment allows
    public addresses (it is checked again before every delivery); with an allow-list, it must be listed."""
    _, host, port = check_url(url)
    if allow.names(host):
        return
    try:
        addresses = resolve(host, port)
    except Refused:
        if allow.empty:
            return
        raise
    _check(host, addresses, allow)
