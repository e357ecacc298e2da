"""Campaign settings and rater invitations, as admins change them on /manage/campaigns/.

Campaign is annotation's table, so every write to it lives here (the pages in frontend/ only
validate the form and call these). Values are checked with the field's name in the error, so a
form can point at the field; the database's CHECK constraints hold the same ranges.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from annotation.models import Campaign
from annotation.services import campaign_add_raters
from richhf_site.errors import ApplicationError
from richhf_site.invites import IssuedInvite, invite_create, user_create_for_invite

# The fields an admin edits, in the order of the form.
EDITABLE_FIELDS = (
    "name",
    "description",
    "raters_per_item",
    "radius_fraction",
    "lease_minutes",
    "show_suggestions",
    "qualification_required",
    "qualification_items",
    "qualification_threshold",
    "honeypot_share",
    "guidelines",
    "guidelines_translations",
)
# Languages the guidelines form offers a translation for (the rater page picks by the
# browser's language and falls back to the default guidelines).
TRANSLATION_LANGUAGES = (("zh-hans", "简体中文 (zh-hans)"),)


def _check(values: dict[str, Any]) -> None:
    def number(name: str, low: float, high: float, *, integer: bool = False, low_open: bool = False) -> None:
        if name not in values:
            return
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ApplicationError(f"{name} must be a number", field=name)
        if integer and int(value) != value:
            raise ApplicationError(f"{name} must be a whole number", field=name)
        if value < low or value > high or (low_open and value == low):
            opening = "(" if low_open else "["
            raise ApplicationError(f"{name} must be in {opening}{low}, {high}], not {value}", field=name)

    if "name" in values:
        name = str(values["name"]).strip()
        if not name:
            raise ApplicationError("the campaign needs a name", field="name")
        if len(name) > 200:
            raise ApplicationError("name: at most 200 characters", field="name")
        values["name"] = name
    number("raters_per_item", 1, 50, integer=True)
    number("radius_fraction", 0, 0.5, low_open=True)
    number("lease_minutes", 1, 24 * 60, integer=True)
    number("qualification_items", 1, 100, integer=True)
    number("qualification_threshold", 0, 1)
    number("honeypot_share", 0, 0.5)
    translations = values.get("guidelines_translations")
    if translations is not None:
        if not isinstance(translations, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in translations.items()
        ):
            raise ApplicationError(
                "guidelines_translations must map language codes to Markdown", field="guidelines_translations"
            )
        # An empty translation falls back to the default guidelines: nothing to store.
        values["guidelines_translations"] = {k: v for k, v in translations.items() if v.strip()}
    unknown = set(values) - set(EDITABLE_FIELDS)
    if unknown:
        raise ApplicationError(f"not editable here: {', '.join(sorted(unknown))}", field=sorted(unknown)[0])


@transaction.atomic
def campaign_create(**values: Any) -> Campaign:
    """A new campaign from the editable fields (the model's defaults for those not given)."""
    _check(values)
    if "name" not in values:
        raise ApplicationError("the campaign needs a name", field="name")
    if Campaign.objects.filter(name=values["name"]).exists():
        raise ApplicationError(f"a campaign named {values['name']!r} exists already", field="name")
    try:
        with transaction.atomic():
            return Campaign.objects.create(**values)
    except IntegrityError as exc:  # a concurrent create of the same name
        raise ApplicationError(f"a campaign named {values['name']!r} exists already", field="name") from exc


@transaction.atomic
def campaign_update(*, campaign_id: int, **values: Any) -> Campaign:
    """Changes the given fields of a campaign (row locked, so two admins do not interleave)."""
    _check(values)
    campaign = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
    if campaign is None:
        raise ApplicationError("no such campaign", status_code=404)
    if "name" in values and Campaign.objects.filter(name=values["name"]).exclude(pk=campaign_id).exists():
        raise ApplicationError(f"a campaign named {values['name']!r} exists already", field="name")
    for name, value in values.items():
        setattr(campaign, name, value)
    campaign.save(update_fields=list(values))
    return campaign


@dataclass
class InviteReport:
    added: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _invite_users(campaign: Campaign, wanted: list[tuple[str, str]]) -> InviteReport:
    """wanted: (where, username) pairs; where prefixes each problem."""
    User = get_user_model()
    report = InviteReport()
    found = {u.username.lower(): u for u in User.objects.filter(username__in=[n for _, n in wanted])}
    for _, name in wanted:  # a different case ("Alice" for "alice"): one look-up each, rare
        if name.lower() not in found:
            user = User.objects.filter(username__iexact=name).first()
            if user is not None:
                found[name.lower()] = user
    members = set(campaign.raters.values_list("pk", flat=True))
    seen: set[str] = set()
    to_add = []
    for where, name in wanted:
        key = name.lower()
        user = found.get(key)
        if user is None:
            report.problems.append(f"{where}: no user named {name!r}")
        elif key in seen:
            report.problems.append(f"{where}: {name!r} is listed twice")
        elif not user.is_active:
            report.problems.append(f"{where}: the account {name!r} is deactivated")
        elif user.pk in members:
            report.already.append(user.username)
        else:
            to_add.append(user)
            report.added.append(user.username)
        seen.add(key)
    if to_add:
        campaign_add_raters(campaign=campaign, users=to_add)
    return report


@transaction.atomic
def campaign_invite(*, campaign: Campaign, usernames: list[str]) -> InviteReport:
    """Adds existing accounts to the campaign as raters (they get the rater role). Unknown or
    deactivated usernames are named and skipped; the others are added."""
    wanted = [(name.strip(), name.strip()) for name in usernames if name.strip()]
    if not wanted:
        raise ApplicationError("give at least one username", field="usernames")
    return _invite_users(campaign, wanted)


@transaction.atomic
def campaign_invite_csv(*, campaign: Campaign, filename: str, data: bytes) -> InviteReport:
    """Adds the CSV's usernames (a `username` column, or one username a line): each bad line
    is reported as FILE:LINE: reason and skipped; the good ones are added."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ApplicationError(f"{filename}:{line}: not UTF-8 text (save the file as UTF-8)", field="file") from exc
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise ApplicationError(f"{filename}: the file is empty", field="file")
    header = [cell.strip().lower() for cell in rows[0]]
    column, start = (header.index("username"), 1) if "username" in header else (0, 0)
    report = InviteReport()
    wanted: list[tuple[str, str]] = []
    for number, row in enumerate(rows[start:], start=start + 1):
        where = f"{filename}:{number}"
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= column or not row[column].strip():
            report.problems.append(f"{where}: no username")
            continue
        wanted.append((where, row[column].strip()))
    found = _invite_users(campaign, wanted) if wanted else InviteReport()
    found.problems = report.problems + found.problems
    found.problems.sort(key=_line_of)
    return found


def _line_of(problem: str) -> int:
    try:
        return int(problem.split(":", 2)[1])
    except (IndexError, ValueError):
        return 0


@transaction.atomic
def campaign_invite_new_account(*, campaign: Campaign, username: str, created_by: Any = None) -> IssuedInvite:
    """Creates a rater account in the campaign that has no password yet, and its one-time
    link on which the new rater sets one. The link's token is returned once, never stored."""
    user = user_create_for_invite(username=username)
    campaign_add_raters(campaign=campaign, users=[user])
    return invite_create(user=user, created_by=created_by)
