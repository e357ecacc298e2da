from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest

from . import services
from .addresses import UrlRefused, url_check_public
from .events import Event
from .models import WebhookDelivery, WebhookEndpoint


class WebhookEndpointForm(forms.ModelForm):
    # A plain field: url_check_public names what is wrong (scheme, host, address).
    url = forms.CharField(max_length=2000)
    events = forms.MultipleChoiceField(choices=Event.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = WebhookEndpoint
        fields = ["campaign", "url", "events", "is_active"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"].strip()
        try:
            url_check_public(url)
        except UrlRefused as exc:
            raise forms.ValidationError(str(exc)) from exc
        return url


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    """Writes go through the services, so the URL check, the generated secret and the
    reset on re-enabling are the API's."""

    form = WebhookEndpointForm
    list_display = ["id", "campaign", "url", "events", "is_active", "consecutive_failures", "disabled_reason"]
    list_filter = ["is_active", "campaign"]
    readonly_fields = ["disabled_reason", "consecutive_failures", "created_by", "created_at", "updated_at"]

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            services.endpoint_update(endpoint=obj, url=data["url"], events=data["events"], is_active=data["is_active"])
            return
        created = services.endpoint_create(
            campaign=data["campaign"], url=data["url"], events=data["events"], created_by=request.user
        )
        if not data["is_active"]:
            services.endpoint_update(endpoint=created, is_active=False)
        obj.pk = created.pk
        messages.warning(request, f"Signing secret (shown only now, keep it): {created.secret}")

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass  # no related objects; the service saved the endpoint


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "endpoint", "event", "status", "attempts", "last_status_code", "created_at", "delivered_at"]
    list_filter = ["status", "event"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
