"""Which URLs a webhook may be sent to: public http(s) only.

A webhook makes the server send a request wherever an admin points it, so an unchecked URL
reaches services only the server can see (the database, Redis, a cloud metadata endpoint at
169.254.169.254). Every address the host resolves to must be public; the check runs when the
URL is saved and again before each delivery, since DNS can answer differently later
(rebinding). Tests point webhooks at a receiver on 127.0.0.1 with
RICHHF_WEBHOOKS_ALLOW_PRIVATE on.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

ALLOWED_SCHEMES = ("http", "https")


class UrlRefused(ValueError):
    """The URL may never be delivered to as it stands (scheme, host, address)."""


class UrlUnresolvable(UrlRefused):
    """The host has no address now; DNS may answer later, so a delivery retries."""


def address_is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is loopback, not an IPv6 host
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
        # is_global also excludes what is_private misses, e.g. 100.64.0.0/10 (carrier NAT).
        or not address.is_global
    )


def url_check_public(url: str, *, allow_private: bool | None = None) -> None:
    """Raises UrlRefused unless url is http(s) and every address of its host is public.

    allow_private (default: the RICHHF_WEBHOOKS_ALLOW_PRIVATE setting) skips the address
    check, never the scheme check.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"not a valid URL: {exc}") from exc
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise UrlRefused("only http and https URLs are allowed")
    host = parts.hostname
    if not host:
        raise UrlRefused("the URL has no host")
    if allow_private is None:
        allow_private = settings.RICHHF_WEBHOOKS_ALLOW_PRIVATE
    if allow_private:
        return
    for address in _resolve(host, port or (443 if parts.scheme.lower() == "https" else 80)):
        if not address_is_public(address):
            raise UrlRefused(f"{host} resolves to {address}, which is not a public address")


def _resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise UrlUnresolvable(f"{host} does not resolve: {exc}") from exc
    # An IPv6 answer may carry a zone ("fe80::1%eth0"); the zone is no part of the address.
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise UrlUnresolvable(f"{host} has no address")
    return addresses
