"""Where a webhook may point: an ``http(s)`` URL whose host resolves only to public addresses.

A webhook makes the server send requests to a URL a user typed, so without this check any account could make
it probe or call services on its own network (cloud metadata at 169.254.169.254, a database admin page on
localhost). The check runs when the webhook is created (the API answers 400) and again before every delivery
(``jobs.webhooks``), whose connection goes to the very address checked here: a name that resolved to a
public address at creation and to 127.0.0.1 later (DNS rebinding) is refused then too.

``resolve`` is the one place names are looked up, so tests can replace it. Nothing of vidscene is imported:
the API and the job engine both use this module.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2000
DEFAULT_PORTS = {"http": 80, "https": 443}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetError(ValueError):
    """The URL may not be used; ``str()`` says why, for the user."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # lower case, IPv6 without brackets
    port: int


def parse(url: str) -> Target:
    """The URL's scheme, host and port, or ``TargetError`` for anything but a plain http(s) URL."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetError(f"use at most {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise TargetError("a URL has no spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetError("not a valid URL") from exc
    if parts.scheme not in DEFAULT_PORTS:
        raise TargetError("use an http:// or https:// URL")
    if not parts.hostname:
        raise TargetError("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise TargetError("put no user name or password in the URL; verify the signature instead")
    return Target(scheme=parts.scheme, host=parts.hostname, port=port or DEFAULT_PORTS[parts.scheme])


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (an IP literal resolves to itself)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def refusal(address: str) -> str | None:
    """Why a request must not go to ``address``, or None for a public unicast address."""
    ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    for flag, what in (("is_loopback", "loopback"), ("is_link_local", "link-local"), ("is_multicast", "multicast"),
                       ("is_unspecified", "unspecified"), ("is_private", "private"), ("is_reserved", "reserved")):
        if getattr(ip, flag):
            return f"{address} is a {what} address"
    if not ip.is_global:  # shared (100.64/10), documentation and other special ranges
        return f"{address} is not a public address"
    return None


def checked_addresses(target: Target, *, allow_private: bool) -> list[str]:
    """The addresses to connect to for ``target``: all of them public unless ``allow_private``.

    One non-public address among several refuses the whole name: a client picking any of them must not reach
    the inside.
    """
    try:
        addresses = resolve(target.host, target.port)
    except OSError as exc:
        raise TargetError(f"the host {target.host} does not resolve") from exc
    if not addresses:
        raise TargetError(f"the host {target.host} does not resolve")
    if not allow_private:
        for address in addresses:
            why = refusal(address)
            if why is not None:
                raise TargetError(f"the host {target.host} is not public ({why})")
    return addresses


def check_url(url: str, *, allow_private: bool) -> Target:
    """``parse`` and ``checked_addresses`` at once: what the API runs when a webhook is created."""
    target = parse(url)
    checked_addresses(target, allow_private=allow_private)
    return target
