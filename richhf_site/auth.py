"""Logins and API tokens.

- Password logins (the /login/ page, the admin's login, POST /api/auth/token/) all go through
  django.contrib.auth.authenticate() with the request, so django-axes counts the failures
  per account and per address and refuses further tries for a cool-off time
  (settings AXES_*). login_lockout_response() is the answer then: 429 JSON with Retry-After
  under /api/, the login page with a readable message elsewhere.
- API tokens (ApiToken) are issued by POST /api/auth/token/, expire after
  RICHHF_TOKEN_TTL, can be listed and revoked by their owner (/api/auth/tokens/) and revoked
  by an admin (Django admin). Only their hash is stored.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.helpers import get_cool_off
from django.contrib.auth import authenticate
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_logged_in
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from richhf_site.errors import error_body
from richhf_site.schema import ErrorResponse

from . import roles
from .authentication import token_hash, token_ttl
from .errors import ApplicationError
from .models import ApiToken

# --------------------------------------------------------------------------- login throttling


class LoginThrottleBackend(AxesStandaloneBackend):
    """django-axes' check, first in AUTHENTICATION_BACKENDS: a locked-out account or address
    gets no further password check.

    Axes refuses authenticate() calls without a request. Those never come from an HTTP
    login (the login page, the admin and the token endpoint all pass theirs); they come from
    code that already holds the password, such as Django's test client login() or a shell.
    They cannot be counted per address, so they are left to the next backend.
    """

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


class RoleModelBackend(ModelBackend):
    """Django's password backend, plus: the admin role holds every admin permission.

    The role is a group membership, checked on each request, so it holds however the role
    was granted (user_add_role, the group added in the Django admin, a superuser) and ends
    when the group is removed. RichHFAdminSite lets the same users into /admin/.
    """

    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        if user_obj.is_active and roles.is_admin(user_obj):
            return True
        return super().has_perm(user_obj, perm, obj)

    def has_module_perms(self, user_obj: Any, app_label: str) -> bool:
        if user_obj.is_active and roles.is_admin(user_obj):
            return True
        return super().has_module_perms(user_obj, app_label)


def login_cool_off_seconds() -> int:
    cool_off = get_cool_off()
    return max(1, int(cool_off.total_seconds())) if cool_off else 0


def login_lockout_message() -> str:
    seconds = login_cool_off_seconds()
    wait = f"{seconds // 60} minutes" if seconds >= 120 else f"{seconds} seconds"
    return (
        "Too many failed logins for this account or from this address. "
        f"Logins are refused for {wait}; try again later or ask an admin to unlock you."
    )


def login_lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: what a locked-out login attempt gets.

    Retry-After is the whole cool-off: a refused attempt does not extend the lockout
    (AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False), so it is an upper bound.
    """
    message = login_lockout_message()
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse(error_body(message, code="login_throttled"), status=status.HTTP_429_TOO_MANY_REQUESTS)
    else:
        context = {
            "form": AuthenticationForm(request),
            "lockout_message": message,
            "next": request.POST.get("next", ""),
        }
        response = render(request, "registration/login.html", context, status=status.HTTP_429_TOO_MANY_REQUESTS)
    if seconds := login_cool_off_seconds():
        response["Retry-After"] = str(seconds)
    return response


# --------------------------------------------------------------------------- tokens: services


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    key: str  # the only time the key exists in clear


@transaction.atomic
def token_create(*, user: Any, name: str = "", ttl: timedelta | None = None) -> IssuedToken:
    """Issues a new token for the user (the default lifetime is RICHHF_TOKEN_TTL)."""
    key = secrets.token_hex(20)  # 40 characters, like DRF's keys, so clients need no change
    now = timezone.now()
    ttl = ttl if ttl is not None else token_ttl()
    token = ApiToken.objects.create(
        user=user,
        name=name[:100],
        key_hash=token_hash(key),
        prefix=key[:8],
        created_at=now,
        expires_at=now + ttl if ttl else None,
    )
    return IssuedToken(token=token, key=key)


@transaction.atomic
def token_revoke(*, token_id: int, user: Any) -> ApiToken:
    """Revokes one of the user's own tokens. Another user's token is reported as missing."""
    token = ApiToken.objects.select_for_update().filter(pk=token_id, user=user).first()
    if token is None:
        raise ApplicationError("No such token among yours.", status_code=404)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def tokens_revoke(*, tokens: QuerySet[ApiToken]) -> int:
    """Revokes the given tokens (the admin's action); returns how many were still live."""
    return tokens.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())


def tokens_for_user(*, user: Any) -> QuerySet[ApiToken]:
    """The user's tokens that were not revoked, newest first (expired ones included, marked)."""
    return ApiToken.objects.filter(user=user, revoked_at__isnull=True).order_by("-created_at", "-id")


# --------------------------------------------------------------------------- tokens: APIs


class TokenOutput(serializers.ModelSerializer):
    expired = serializers.SerializerMethodField()

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "expires_at", "expired"]

    def get_expired(self, token: ApiToken) -> bool:
        return token.expires_at is not None and token.expires_at <= timezone.now()


_ERROR = ErrorResponse


class TokenObtainApi(APIView):
    """Exchanges a username and password for a new API token (shown once).

    Failed attempts count toward the login lockout (per account and per address); a locked
    out attempt gets 429 with Retry-After, even with the right password.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]

    class Input(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=4096, trim_whitespace=False)
        name = serializers.CharField(max_length=100, required=False, default="", allow_blank=True)

    class Output(serializers.Serializer):
        token = serializers.CharField(help_text="The key; it is not stored and cannot be shown again.")
        id = serializers.IntegerField()
        expires_at = serializers.DateTimeField(allow_null=True)

    @extend_schema(
        request=Input,
        responses={
            200: Output,
            400: OpenApiResponse(_ERROR, description="Missing fields or wrong username/password."),
            429: OpenApiResponse(_ERROR, description="Too many failed logins; see Retry-After."),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        # The Django request, not DRF's wrapper: axes marks it, and AxesMiddleware turns a
        # marked request into the lockout answer.
        user = authenticate(
            request._request, username=data.validated_data["username"], password=data.validated_data["password"]
        )
        if user is None:
            raise ApplicationError(
                "Unable to log in with the provided username and password.", field="non_field_errors"
            )
        # A token login is a login: last_login is updated, and axes clears the failures of
        # this account and address (AXES_RESET_ON_SUCCESS), as on the login page.
        user_logged_in.send(sender=user.__class__, request=request._request, user=user)
        issued = token_create(user=user, name=data.validated_data["name"] or "API login")
        return Response(
            self.Output({"token": issued.key, "id": issued.token.pk, "expires_at": issued.token.expires_at}).data
        )


class TokenListApi(APIView):
    """The caller's own tokens that were not revoked (keys are never shown again)."""

    @extend_schema(responses=TokenOutput(many=True))
    def get(self, request: Request) -> Response:
        return Response(TokenOutput(tokens_for_user(user=request.user), many=True).data)


class TokenRevokeApi(APIView):
    """Revokes one of the caller's own tokens; it is refused (401) from then on."""

    @extend_schema(responses={204: None, 404: OpenApiResponse(_ERROR, description="Not one of your tokens.")})
    def delete(self, request: Request, token_id: int) -> Response:
        token_revoke(token_id=token_id, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
