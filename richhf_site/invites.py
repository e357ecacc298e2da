"""One-time invite links: an admin creates an account, the new user sets its own password.

The link's token is 256 random bits shown once; only its SHA-256 is stored (a fast hash is
enough for a random token, as for API keys). Accepting is one conditional UPDATE on an
unused, unexpired invite, so a link can never be used twice, even by two requests at once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .errors import ApplicationError
from .models import Invite


def invite_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedInvite:
    invite: Invite
    token: str  # shown once; never stored


@transaction.atomic
def invite_create(*, user: Any, created_by: Any = None, hours: int | None = None) -> IssuedInvite:
    """A fresh link for user (an account without a usable password)."""
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    invite = Invite.objects.create(
        user=user,
        token_hash=invite_token_hash(token),
        created_by=created_by,
        created_at=now,
        expires_at=now + timedelta(hours=hours or settings.RICHHF_INVITE_HOURS),
    )
    return IssuedInvite(invite=invite, token=token)


def invite_for_token(*, token: str) -> Invite | None:
    """The usable invite the token opens, or None (unknown, used or expired: one answer)."""
    invite = Invite.objects.select_related("user").filter(token_hash=invite_token_hash(token)).first()
    if invite is None or not invite.is_usable() or not invite.user.is_active:
        return None
    return invite


@transaction.atomic
def invite_accept(*, token: str, password: str) -> Any:
    """Sets the account's password and spends the invite; returns the user."""
    invite = invite_for_token(token=token)
    if invite is None:
        raise ApplicationError("This invite link is unknown, used or expired.", status_code=404)
    try:
        validate_password(password, user=invite.user)
    except ValidationError as exc:
        raise ApplicationError(" ".join(exc.messages), field="password") from exc
    spent = Invite.objects.filter(pk=invite.pk, used_at__isnull=True, expires_at__gt=timezone.now()).update(
        used_at=timezone.now()
    )
    if not spent:  # another request used it a moment ago
        raise ApplicationError("This invite link is unknown, used or expired.", status_code=404)
    user = invite.user
    user.set_password(password)
    user.save(update_fields=["password"])
    return user


def user_create_for_invite(*, username: str) -> Any:
    """An account that cannot log in until its invite is accepted."""
    User = get_user_model()
    username = username.strip()
    if not username:
        raise ApplicationError("a username is needed", field="username")
    field = User._meta.get_field("username")
    try:
        field.run_validators(username)
        field.clean(username, None)
    except ValidationError as exc:
        raise ApplicationError(f"{username!r}: {' '.join(exc.messages)}", field="username") from exc
    if User.objects.filter(username__iexact=username).exists():
        raise ApplicationError(f"the username {username!r} is taken", field="username")
    user = User(username=username)
    user.set_unusable_password()
    user.save()
    return user
