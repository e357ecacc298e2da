"""Only public http(s) URLs: checked on registration and again before each delivery."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from pytest_django.fixtures import Settings

from aggregation.webhooks import services
from aggregation.webhooks.addresses import UrlRefused, UrlUnresolvable, url_check_public
from aggregation.webhooks.events import Event
from aggregation.webhooks.models import WebhookDelivery, WebhookEndpoint

from .conftest import Receiver

NOT_PUBLIC = [
    "http://127.0.0.1/hook",
    "http://127.1.2.3:8080/hook",
    "http://localhost:8000/hook",
    "http://0.0.0.0/",
    "http://10.0.0.5/",
    "http://172.16.3.4/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://224.0.0.1/",
    "http://240.0.0.1/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[fe80::1]/",
    "http://[fd00::1]/",
]
BAD_SCHEME_OR_SHAPE = [
    "ftp://93.184.216.34/hook",
    "file:///etc/passwd",
    "gopher://93.184.216.34/",
    "javascript:alert(1)",
    "93.184.216.34/hook",
    "http://",
    "http://93.184.216.34:99999/",
]
PUBLIC = ["http://93.184.216.34/hook", "https://8.8.8.8:8443/x?y=1", "https://[2606:4700:4700::1111]/hook"]


@pytest.mark.parametrize("url", NOT_PUBLIC + BAD_SCHEME_OR_SHAPE)
def test_private_addresses_and_other_schemes_are_refused(url: str, settings: Settings) -> None:
    settings.RICHHF_WEBHOOKS_ALLOW_PRIVATE = False
    with pytest.raises(UrlRefused):
        url_check_public(url)


@pytest.mark.parametrize("url", PUBLIC)
def test_public_addresses_are_allowed(url: str, settings: Settings) -> None:
    settings.RICHHF_WEBHOOKS_ALLOW_PRIVATE = False
    url_check_public(url)


@pytest.mark.parametrize("url", NOT_PUBLIC)
def test_the_setting_allows_private_addresses_for_tests(url: str, settings: Settings) -> None:
    settings.RICHHF_WEBHOOKS_ALLOW_PRIVATE = True
    url_check_public(url)


@pytest.mark.parametrize("url", BAD_SCHEME_OR_SHAPE)
def test_the_setting_never_allows_another_scheme(url: str, settings: Settings) -> None:
    settings.RICHHF_WEBHOOKS_ALLOW_PRIVATE = True
    with pytest.raises(UrlRefused):
        url_check_public(url)


def _resolving_to(monkeypatch: pytest.MonkeyPatch, *addresses: str) -> None:
    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_every_resolved_address_must_be_public(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    settings.RICHHF_WEBHOOKS_ALLOW_PRIVATE = False
    _resolving_to(monkeypatch, "93.184.216.34")
    url_check_public("https://hooks.example.com/x")
    _resolving_to(monkeypatch, "93.184.216.34", "10.1.2.3")
    with pytest.raises(UrlRefused, match="10.1.2.3"):
        url_check_public("https://hooks.example.com/x")
    _resolving_to(monkeypatch)
    with pytest.raises(UrlUnresolvable):
        url_check_public("https://hooks.example.com/x")


@pytest.mark.django_db
def test_the_address_is_checked_again_at_delivery_time(
    make_campaign, monkeypatch: pytest.MonkeyPatch, settings: Settings, receiver: Receiver
) -> None:
    """DNS rebinding: public when registered, loopback when delivered."""
    settings.RICHHF_WEBHOOKS_ALLOW_PRIVATE = False
    port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
    _resolving_to(monkeypatch, "93.184.216.34")
    endpoint = services.endpoint_create(
        campaign=make_campaign(), url=f"http://rebind.example:{port}/hook", events=[Event.ITEM_COMPLETED]
    )
    [delivery_id] = services.event_emit(campaign_id=endpoint.campaign_id, event=Event.ITEM_COMPLETED, data={})
    _resolving_to(monkeypatch, "127.0.0.1")
    outcome = services.delivery_attempt(delivery_id=delivery_id)
    assert outcome.status == "failed"
    assert receiver.requests == []
    assert "address refused" in WebhookDelivery.objects.get(pk=delivery_id).last_error
    # A name that does not resolve right now is worth another try.
    _resolving_to(monkeypatch)
    [delivery_id] = services.event_emit(campaign_id=endpoint.campaign_id, event=Event.ITEM_COMPLETED, data={})
    assert services.delivery_attempt(delivery_id=delivery_id).status == "pending"
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).is_active
