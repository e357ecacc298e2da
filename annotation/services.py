"""Writes of the annotation domain: items, leases, submissions, skips.

Locking protocol (PostgreSQL; SQLite serialises writers anyway):
- every request of one rater first locks that rater's user row, so a double click never
  leases two items;
- every lease, heartbeat and submit for an item holds the item's row lock while it counts
  the item's active assignments, so counts made under the lock are exact;
- the queue query takes candidate items with SKIP LOCKED, so concurrent raters fan out over
  different items instead of queueing behind one.
An assignment is *active* when submitted, or leased with an expiry in the future. Skips and
expired leases never count toward the campaign's k raters.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.db import IntegrityError, connection, transaction
from django.db.models import (
    Count,
    Exists,
    F,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext
from PIL import Image, UnidentifiedImageError

from modeling.protocol import SCORE_NAMES
from modeling.text import split_prompt_words
from richhf_site.errors import ApplicationError, Conflict
from richhf_site.sqltemplates import SQLTemplate, model_columns, models_from_row

from . import gold, hooks
from .models import Annotation, Assignment, AssignmentState, Campaign, Draft, Item, Qualification, RaterStatus, Split

User = get_user_model()


def active_assignment_q(now) -> Q:
    """An assignment that counts toward its item's k: a live lease, or an answer not excluded."""
    return Q(state=AssignmentState.SUBMITTED, annotation__excluded_at__isnull=True) | Q(
        state=AssignmentState.LEASED, expires_at__gt=now
    )


def active_count_subquery(now) -> Coalesce:
    """Per outer Item row (OuterRef("pk")): how many of its assignments count toward k, 0 if none."""
    counts = (
        Assignment.objects.filter(item=OuterRef("pk"))
        .filter(active_assignment_q(now))
        .order_by()
        .values("item")
        .annotate(c=Count("pk"))
        .values("c")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), Value(0))


# The same rule in SQL, for the statements written by hand below (alias `a` = the assignment).
_COUNTS_TOWARD_K_SQL = (
    f"((a.state = %s AND NOT EXISTS (SELECT 1 FROM {Annotation._meta.db_table} x WHERE x.assignment_id = a.id "
    "AND x.excluded_at IS NOT NULL)) OR (a.state = %s AND a.expires_at > %s))"
)


def _paused_q(*, campaign_ref, rater) -> Exists:
    """EXISTS column: quality control paused this rater in the campaign (annotation/moderation.py)."""
    return Exists(RaterStatus.objects.filter(campaign_id=campaign_ref, rater_id=rater.pk, paused_at__isnull=False))


def rater_paused_check(*, campaign_id: int, rater, known: bool | None = None) -> None:
    """Raises 409 (code "paused") when quality control paused this rater in the campaign.

    `known`: the answer an EXISTS column of the caller's own query already gave (no extra
    round trip); None asks the database now."""
    if known is None:
        known = RaterStatus.objects.filter(campaign_id=campaign_id, rater_id=rater.pk, paused_at__isnull=False).exists()
    if known:
        raise Conflict(
            gettext(
                "A project lead paused your work in this campaign; your open items were released and "
                "nothing new can be leased or submitted until they resume you."
            ),
            extra={"code": "paused"},
        )


def _count_active(*, item_id: int, now, exclude_id: int | None = None) -> int:
    qs = Assignment.objects.filter(item_id=item_id).filter(active_assignment_q(now))
    if exclude_id is not None:
        qs = qs.exclude(pk=exclude_id)
    return qs.count()


# --------------------------------------------------------------------------- items


class ItemRejected(ApplicationError):
    """An image-prompt pair that cannot become an item (bad image, empty prompt...)."""


@dataclass(frozen=True)
class ItemInput:
    image_bytes: bytes
    filename: str
    prompt: str
    source_id: str = ""
    category: str = ""
    photorealistic: bool | None = None
    split: str = Split.TRAIN
    priority: float = 0.0
    generator: str = ""


def _inspect_image(data: bytes, filename: str) -> tuple[int, int, str]:
    """Returns (width, height, format) or raises ItemRejected naming the file."""
    if not data:
        raise ItemRejected(f"{filename}: the file is empty", field="image")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.verify()  # catches truncated and corrupt files without decoding twice
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            fmt = (img.format or "").lower()
    except UnidentifiedImageError as exc:
        # Pillow's own message names its in-memory buffer ("<_io.BytesIO object at 0x...>").
        raise ItemRejected(f"{filename}: not a readable image (unknown or damaged format)", field="image") from exc
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ItemRejected(f"{filename}: not a readable image ({exc})", field="image") from exc
    if width * height > settings.RICHHF_MAX_IMAGE_PIXELS:
        raise ItemRejected(f"{filename}: image too large ({width}x{height})", field="image")
    return width, height, fmt or "png"


def item_create(*, campaign: Campaign, data: ItemInput) -> tuple[Item, bool]:
    """Creates an item unless the same image bytes are already in the campaign.

    Returns (item, created); a duplicate returns the existing item untouched. The image file is
    written first and removed again if the row cannot be written, so a failure leaves neither
    a row nor an orphan file. Call it outside any wider transaction.
    """
    # Kept verbatim (ends trimmed): the release's word split treats tabs and newlines as part
    # of words, so normalising whitespace would shift labels against public data.
    prompt = data.prompt.strip()
    if not prompt:
        raise ItemRejected("the prompt is empty", field="prompt")
    words = split_prompt_words(prompt)
    if not words:
        raise ItemRejected("the prompt has no words", field="prompt")
    if data.split not in Split.values:
        raise ItemRejected(f"split must be one of {', '.join(Split.values)}, not {data.split!r}", field="split")
    # NaN compares false with everything, so it would sort first in the queue ("-priority").
    priority = data.priority
    if isinstance(priority, bool) or not (isinstance(priority, (int, float)) and math.isfinite(priority)):
        raise ItemRejected(f"priority must be a finite number, not {priority!r}", field="priority")
    content_hash = hashlib.sha256(data.image_bytes).hexdigest()
    existing = Item.objects.filter(campaign=campaign, content_hash=content_hash).first()
    if existing is not None:
        return existing, False
    width, height, fmt = _inspect_image(data.image_bytes, data.filename)
    item = Item(
        campaign=campaign,
        width=width,
        height=height,
        prompt=prompt,
        words=words,
        source_id=data.source_id[:255],
        category=data.category[:100],
        photorealistic=data.photorealistic,
        split=data.split,
        priority=data.priority,
        generator=data.generator.strip()[:200],
        content_hash=content_hash,
    )
    suffix = {"jpeg": "jpg"}.get(fmt, fmt)
    item.image.save(f"{content_hash}.{suffix}", ContentFile(data.image_bytes), save=False)
    try:
        with transaction.atomic():
            item.save()
    except IntegrityError:
        item.image.delete(save=False)
        # Lost a race with a concurrent import of the same bytes: that row wins.
        winner = Item.objects.filter(campaign=campaign, content_hash=content_hash).first()
        if winner is None:
            raise
        return winner, False
    except BaseException:
        item.image.delete(save=False)
        raise
    return item, True


# --------------------------------------------------------------------------- leases


@dataclass(frozen=True)
class NextItemResult:
    assignment: Assignment | None
    # Why there is no assignment (queue_empty_reason): "paused", "not_qualified", "busy" (the
    # items left are all leased to others right now), "new" (nothing yet, and this rater never
    # answered or skipped anything here), "done" (nothing left for this rater) or
    # "qualification_unavailable" (qualification is required and no gold item is left).
    reason: str = ""
    # Leases held beyond the current one, so the page can preload the next image.
    upcoming: tuple[Assignment, ...] = ()


MAX_LOOKAHEAD = 1

# Honeypot draws: unpredictable in production; tests pass a seeded random.Random.
_RNG = random.SystemRandom()


@dataclass(frozen=True)
class RaterStanding:
    """The rater's RaterStatus in one campaign, read with their lock (no row: defaults)."""

    qualification: str | None = None
    attempt: int = 1
    paused: bool = False

    def mode(self, campaign: Campaign) -> str:
        """paused | not_qualified | qualifying | production."""
        if self.paused:
            return "paused"
        if campaign.qualification_required:
            if self.qualification == Qualification.FAILED:
                return "not_qualified"
            if self.qualification in (None, Qualification.PENDING):
                return "qualifying"
        return "production"


def _status_columns(campaign_ref, rater_id: int) -> dict[str, Subquery]:
    """RaterStatus fields as subquery columns, so the statement that locks the rater reads them."""
    row = RaterStatus.objects.filter(campaign_id=campaign_ref, rater_id=rater_id)
    return {
        "status_qualification": Subquery(row.values("qualification")[:1]),
        "status_attempt": Subquery(row.values("qualification_attempt")[:1]),
        "status_paused_at": Subquery(row.values("paused_at")[:1]),
    }


def _standing(row: Mapping) -> RaterStanding:
    return RaterStanding(
        qualification=row["status_qualification"],
        attempt=row["status_attempt"] or 1,
        paused=row["status_paused_at"] is not None,
    )


CampaignRater = Campaign.raters.through


def _lock_rater(rater) -> None:
    User.objects.select_for_update().filter(pk=rater.pk).values_list("pk", flat=True).first()


def _lock_item(item_id: int) -> Item:
    return Item.objects.select_for_update().select_related("campaign").get(pk=item_id)


def _lease_expiry(campaign: Campaign, now):
    return now + timedelta(minutes=campaign.lease_minutes)


def _live_leases(*, rater, campaign_id: int, now):
    return Assignment.objects.filter(
        rater=rater, item__campaign_id=campaign_id, state=AssignmentState.LEASED, expires_at__gt=now
    )


def _queue_open(*, campaign_id: int, rater) -> QuerySet[Item]:
    """Open real items of the campaign this rater never held. Gold items are never real work:
    they are leased only as qualification or honeypots."""
    return Item.objects.filter(campaign_id=campaign_id, completed_at__isnull=True, is_gold=False).exclude(
        Exists(Assignment.objects.filter(item=OuterRef("pk"), rater=rater))
    )


def _live_lease_item_ids(*, campaign_id: int, now) -> QuerySet[Assignment, Any]:
    return Assignment.objects.filter(
        item__campaign_id=campaign_id, state=AssignmentState.LEASED, expires_at__gt=now
    ).values("item_id")


def _with_free_slot(queue: QuerySet[Item], now) -> QuerySet[Item]:
    """Items of `queue` with fewer active assignments than k. k comes from the campaign's row,
    not an instance: the rater API compiles this into its lock statement before the campaign
    is read (_lock_membership_and_walk)."""
    return queue.annotate(n_active=active_count_subquery(now)).filter(
        n_active__lt=F("campaign__raters_per_item") + F("extra_raters")
    )


def _queue_partly_done(*, campaign_id: int, rater, now) -> QuerySet[Item]:
    """The queue's first part: items with answers and a free slot, closest to done, by
    priority and age (walked in the order of item_partly_done_idx)."""
    partly_done = _queue_open(campaign_id=campaign_id, rater=rater).filter(n_submitted__gt=0)
    return _with_free_slot(partly_done, now).order_by("-priority", "id")


def _queue_leased(*, campaign_id: int, rater, now) -> QuerySet[Item]:
    """The second part: items without answers that others hold leases on, with a free slot
    (found through the live leases: a handful of rows)."""
    leased = _queue_open(campaign_id=campaign_id, rater=rater).filter(
        n_submitted=0, pk__in=_live_lease_item_ids(campaign_id=campaign_id, now=now)
    )
    return _with_free_slot(leased, now).order_by("-priority", "id")


def _queue_untouched(*, campaign_id: int, rater, now) -> QuerySet[Item]:
    """The last part: untouched items (no answer, no live lease: no active assignment, so
    always a free slot), walked in the order of item_untouched_idx, so the walk
    stops at the first free one instead of sorting every open item."""
    return (
        _queue_open(campaign_id=campaign_id, rater=rater)
        .filter(n_submitted=0)
        .exclude(pk__in=_live_lease_item_ids(campaign_id=campaign_id, now=now))
        .order_by("-priority", "id")
    )


_QUEUE_PARTS = (_queue_partly_done, _queue_leased, _queue_untouched)


def _queue_candidates(*, campaign: Campaign, rater, now) -> QuerySet[Item]:
    """Every item this rater may lease now (in no particular order): the parts of the queue."""
    kw = {"campaign_id": campaign.pk, "rater": rater, "now": now}
    in_any = Q()
    for part in _QUEUE_PARTS:
        in_any |= Q(pk__in=part(**kw).values("pk"))
    return Item.objects.filter(in_any)


def _queue_first_sql(*, campaign_id: int, rater, now, exclude: Sequence[int] = ()) -> tuple[str, list]:
    """SQL for the id of the first item to lease, locked (FOR UPDATE SKIP LOCKED): the first
    free item of the queue's parts in turn (partly done, leased by others, untouched). One
    expression of scalar subqueries; PostgreSQL evaluates a part only when the ones before it
    found nothing, and each part walks an index in queue order, so a lease never sorts or
    scans the campaign's open items (issue 16)."""
    kw = {"campaign_id": campaign_id, "rater": rater, "now": now}
    parts, params = [], []
    for part in _QUEUE_PARTS:
        queue = part(**kw)
        if exclude:
            queue = queue.exclude(pk__in=list(exclude))
        locked = queue.values("pk").select_for_update(skip_locked=True, of=("self",))[:1]
        sql, part_params = locked.query.get_compiler(connection=connection).as_sql()
        parts.append(f"({sql})")
        params.extend(part_params)
    return f"COALESCE({', '.join(parts)})", params


def _insert_lease_if_slot_free(*, item: Item, rater, campaign: Campaign, now) -> Assignment | None:
    """Inserts the lease only if the item still has a free slot, recounted in the same statement.

    The caller holds the item's row lock, and this statement starts after the lock was taken,
    so under READ COMMITTED its count sees every lease and answer committed before: the count
    is exact. One round trip instead of a COUNT followed by an INSERT.
    """
    a = Assignment._meta.db_table
    expires_at = _lease_expiry(campaign, now)
    sql = (
        f"INSERT INTO {a} (item_id, rater_id, state, leased_at, expires_at, finished_at, skip_reason) "
        f"SELECT %s, %s, %s, %s, %s, NULL, '' WHERE ("
        f"SELECT COUNT(*) FROM {a} a WHERE a.item_id = %s AND {_COUNTS_TOWARD_K_SQL}"
        f") < %s RETURNING id"
    )
    params = [
        item.pk,
        rater.pk,
        AssignmentState.LEASED.value,
        now,
        expires_at,
        item.pk,
        AssignmentState.SUBMITTED.value,
        AssignmentState.LEASED.value,
        now,
        campaign.raters_per_item + item.extra_raters,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    item.campaign = campaign
    return _new_lease(pk=row[0], item=item, rater=rater, now=now, expires_at=expires_at)


def _new_lease(*, pk: int, item: Item, rater, now, expires_at) -> Assignment:
    """The instance of a lease just inserted by hand-written SQL (no ORM round trip)."""
    return Assignment(
        pk=pk,
        item=item,
        rater=rater,
        state=AssignmentState.LEASED,
        leased_at=now,
        expires_at=expires_at,
        finished_at=None,
        skip_reason="",
    )


def _lease_one(*, rater, campaign: Campaign, now, tried: list[int] | None = None) -> Assignment | None:
    tried = list(tried or [])
    # The candidates come from the statement's snapshot; the insert recounts under the item
    # lock, and we move on if someone filled the item between the snapshot and the lock.
    for _ in range(100):
        first_sql, params = _queue_first_sql(campaign_id=campaign.pk, rater=rater, now=now, exclude=tried)
        item = Item.objects.filter(pk=RawSQL(f"SELECT {first_sql}", params)).first()
        if item is None:
            break
        leased = _insert_lease_if_slot_free(item=item, rater=rater, campaign=campaign, now=now)
        if leased is not None:
            return leased
        tried.append(item.pk)
    return None


def _assignment_next_locked(
    *,
    rater,
    campaign: Campaign,
    now,
    lookahead: int,
    standing: RaterStanding,
    rng: random.Random | None,
    fast: tuple[list[Assignment], list[int]] | None = None,
) -> NextItemResult:
    """``fast``: what the rater API's lock statement settled already (_lease_fast): the
    rater's live leases, read after the lock, and the items tried; None: read them here."""
    mode = standing.mode(campaign)
    # A paused or failed rater gets nothing, not even a lease they still hold (pausing
    # releases those; a failed rater holds only gold leases of the qualification).
    if mode in ("paused", "not_qualified"):
        return NextItemResult(None, reason=mode)
    rng = rng or _RNG
    tried: list[int] = []
    if fast is not None:
        held, tried = fast
    else:
        # Expired leases are left to the beat sweeper (annotation.expire_leases): every query
        # here reads a lease past its expiry as not active, so an UPDATE on each request bought
        # nothing. Read after the lock is held (a statement of its own): a request that waited
        # on the lock must see the lease its twin (a double click) committed meanwhile.
        held = list(
            _live_leases(rater=rater, campaign_id=campaign.pk, now=now)
            .select_related("item", "draft")  # the payload's draft, in the same statement
            .order_by("leased_at", "id")
        )
        for assignment in held:
            assignment.item.campaign = campaign
    if mode == "qualifying":
        return _qualification_next(
            rater=rater, campaign=campaign, now=now, lookahead=lookahead, standing=standing, held=held, rng=rng
        )
    while len(held) < 1 + lookahead:
        leased = None
        # A honeypot: a share of leases are gold items, drawn per lease so nothing in the
        # order or timing sets them apart. No draw (and no query) when the share is 0.
        # Only while real work is still being handed out: a gold item after the last real
        # one would be followed by "done" and so stand out.
        if (
            campaign.honeypot_share > 0
            and rng.random() < campaign.honeypot_share
            and _queue_candidates(campaign=campaign, rater=rater, now=now).exists()
        ):
            leased = gold.gold_lease(rater=rater, campaign=campaign, now=now, rng=rng)
        if leased is None:
            leased = _lease_one(rater=rater, campaign=campaign, now=now, tried=tried)
        if leased is None:
            break
        _forget_draft(leased)  # a lease made just now has none
        held.append(leased)
    if held:
        return NextItemResult(held[0], upcoming=tuple(held[1:]))
    return NextItemResult(None, reason=queue_empty_reason(rater=rater, campaign=campaign))


def _forget_draft(assignment: Assignment) -> None:
    """Records on the instance that it has no draft (new lease, or its draft was just deleted),
    so serializing the assignment's `draft` costs no query."""
    Assignment.draft.related.set_cached_value(assignment, None)


def queue_empty_reason(*, rater, campaign: Campaign) -> str:
    """Why the queue gave this rater nothing: the NextItemResult.reason values, first match wins.

    Runs only on the empty path, so the leasing path pays nothing for it: one query for the
    rater's standing, one for the items still waiting, one for their own history.
    """
    standing = RaterStatus.objects.filter(campaign=campaign, rater=rater).only("paused_at", "qualification").first()
    if standing is not None and standing.paused_at is not None:
        return "paused"
    if campaign.qualification_required and standing is not None and standing.qualification == Qualification.FAILED:
        return "not_qualified"
    # Items this rater could still get once other raters' leases end or are submitted.
    waiting = (
        Item.objects.filter(campaign=campaign, completed_at__isnull=True, is_gold=False)
        .exclude(Exists(Assignment.objects.filter(item=OuterRef("pk"), rater=rater)))
        .exists()
    )
    if waiting:
        return "busy"
    answered = Assignment.objects.filter(
        rater=rater, item__campaign=campaign, state__in=[AssignmentState.SUBMITTED, AssignmentState.SKIPPED]
    ).exists()
    return "done" if answered else "new"


def _qualification_next(
    *,
    rater,
    campaign: Campaign,
    now,
    lookahead: int,
    standing: RaterStanding,
    held: list[Assignment],
    rng: random.Random,
) -> NextItemResult:
    """A rater still to qualify gets only gold items they were never given, N in all."""
    held = [a for a in held if a.item.is_gold]
    answered = gold.qualification_answered(campaign=campaign, rater=rater, attempt=standing.attempt)
    wanted = min(1 + lookahead, max(0, campaign.qualification_items - answered))
    while len(held) < wanted:
        leased = gold.gold_lease(rater=rater, campaign=campaign, now=now, rng=rng)
        if leased is None:
            break
        _forget_draft(leased)
        held.append(leased)
    if held:
        return NextItemResult(held[0], upcoming=tuple(held[1:]))
    return NextItemResult(None, reason="qualification_unavailable")


def _check_lookahead(lookahead: int) -> None:
    if not 0 <= lookahead <= MAX_LOOKAHEAD:
        raise ApplicationError(f"lookahead must be between 0 and {MAX_LOOKAHEAD}", field="lookahead")


@transaction.atomic
def assignment_next(
    *, rater, campaign: Campaign, now=None, lookahead: int = 0, rng: random.Random | None = None
) -> NextItemResult:
    """Returns the rater's current lease in the campaign, leasing the next item if needed.

    Idempotent: asking twice returns the same lease. With lookahead=1 the rater also holds a
    lease on the item after it (so the page can preload its image); it counts toward k like
    any lease and expires like any lease. Holds the rater's lock for the whole call (their
    membership row in the campaign, or their user row if they are not a member: see
    assignment_next_for_member), and each chosen item's row lock while counting its active
    assignments.
    """
    _check_lookahead(lookahead)
    now = now or timezone.now()
    member = (
        CampaignRater.objects.select_for_update()
        .filter(campaign_id=campaign.pk, user_id=rater.pk)
        .values("pk", **_status_columns(OuterRef("campaign_id"), rater.pk))
        .first()
    )
    if member is None:
        _lock_rater(rater)
        standing = RaterStanding()
        status = RaterStatus.objects.filter(campaign=campaign, rater=rater).first()
        if status is not None:
            standing = RaterStanding(status.qualification, status.qualification_attempt, status.paused_at is not None)
    else:
        standing = _standing(member)
    return _assignment_next_locked(
        rater=rater, campaign=campaign, now=now, lookahead=lookahead, standing=standing, rng=rng
    )


@transaction.atomic
def assignment_next_for_member(
    *, rater, campaign_id: int, now=None, lookahead: int = 0, rng: random.Random | None = None
) -> NextItemResult:
    """assignment_next for the rater API: one statement checks that the caller is a rater of
    the campaign, fetches the campaign and locks the caller's membership row.

    The membership row is this rater's lock in this campaign: two requests of one rater (a
    double click) queue on it, so they never lease two items. Raises 404 for a campaign that
    does not exist or is not theirs (the same answer: no existence leak).
    """
    _check_lookahead(lookahead)
    now = now or timezone.now()
    if connection.vendor != "postgresql":  # SKIP LOCKED in a sub-select: PostgreSQL's
        return _assignment_next_for_member_plain(
            rater=rater, campaign_id=campaign_id, now=now, lookahead=lookahead, rng=rng
        )
    locked = _lock_membership_and_walk(rater=rater, campaign_id=campaign_id, now=now)
    if locked is None:
        raise ApplicationError(gettext("No such campaign among yours."), status_code=404)
    campaign, standing, candidate_id = locked
    fast = None
    if candidate_id is not None:
        fast = _lease_fast(item_id=candidate_id, rater=rater, campaign=campaign, now=now)
    return _assignment_next_locked(
        rater=rater, campaign=campaign, now=now, lookahead=lookahead, standing=standing, rng=rng, fast=fast
    )


def _assignment_next_for_member_plain(
    *, rater, campaign_id: int, now, lookahead: int, rng: random.Random | None
) -> NextItemResult:
    """The same without the queue walk in the lock statement (databases other than PostgreSQL)."""
    membership = (
        CampaignRater.objects.select_for_update(of=("self",))
        .select_related("campaign")
        .annotate(**_status_columns(OuterRef("campaign_id"), rater.pk))
        .filter(campaign_id=campaign_id, user_id=rater.pk)
        .first()
    )
    if membership is None:
        raise ApplicationError(gettext("No such campaign among yours."), status_code=404)
    return _assignment_next_locked(
        rater=rater,
        campaign=membership.campaign,
        now=now,
        lookahead=lookahead,
        standing=_standing(vars(membership)),
        rng=rng,
    )


_LIVE_LEASES_OF_RATER_SQL = (
    f"SELECT COUNT(*) FROM {Assignment._meta.db_table} h JOIN {Item._meta.db_table} hi ON hi.id = h.item_id "
    "WHERE h.rater_id = %s AND hi.campaign_id = %s AND h.state = %s AND h.expires_at > %s"
)


def _lock_statement(*, campaign_id: int, rater, now) -> tuple[str, list]:
    """_lock_membership_and_walk's statement (compiled once per process: _LOCK_STATEMENT)."""
    m, c, st = CampaignRater._meta.db_table, Campaign._meta.db_table, RaterStatus._meta.db_table
    queue_sql, queue_params = _queue_first_sql(campaign_id=campaign_id, rater=rater, now=now)
    sql = (
        f"SELECT {model_columns(Campaign, 'c')}, s.qualification, s.qualification_attempt, s.paused_at, "
        f"CASE WHEN s.paused_at IS NULL AND c.honeypot_share = 0 "
        f"AND (NOT c.qualification_required OR s.qualification = %s) "
        f"AND ({_LIVE_LEASES_OF_RATER_SQL}) = 0 THEN {queue_sql} END "
        f"FROM {m} m JOIN {c} c ON c.id = m.campaign_id "
        f"LEFT JOIN {st} s ON s.campaign_id = m.campaign_id AND s.rater_id = m.user_id "
        f"WHERE m.campaign_id = %s AND m.user_id = %s FOR UPDATE OF m"
    )
    params = [
        Qualification.PASSED.value,
        rater.pk,
        campaign_id,
        AssignmentState.LEASED.value,
        now,
        *queue_params,
        campaign_id,
        rater.pk,
    ]
    return sql, params


_LOCK_STATEMENT = SQLTemplate(_lock_statement)


def _lock_membership_and_walk(*, rater, campaign_id: int, now) -> tuple[Campaign, RaterStanding, int | None] | None:
    """One statement: the caller's membership check, the campaign, the rater's standing, and
    the lock on their membership row (their lock in this campaign: a double click's twin
    requests queue here, so they never lease two items). When the rater may simply lease
    (production mode, no honeypots, no live lease in the statement's snapshot) it also walks
    the queue and locks the first free item (SKIP LOCKED), so a plain lease costs this
    statement and one insert. None: no such campaign among the rater's.

    The snapshot of this statement predates the wait for the lock, so what it reads about the
    rater's own leases may be stale; _lease_fast's insert, a later statement, rechecks them.
    """
    sql, params = _LOCK_STATEMENT(campaign_id=campaign_id, rater=rater, now=now)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    (campaign,), (qualification, attempt, paused_at, candidate_id) = models_from_row(row, Campaign)
    standing = RaterStanding(qualification=qualification, attempt=attempt or 1, paused=paused_at is not None)
    return campaign, standing, candidate_id


def _lease_fast(*, item_id: int, rater, campaign: Campaign, now) -> tuple[list[Assignment], list[int]] | None:
    """Leases the item the lock statement chose and locked, in one statement: the insert runs
    only if the item still has a free slot and the rater still holds no live lease, both
    counted by this statement, which starts after both locks were granted, so it sees every
    lease and answer committed before (the twin's included). It returns the item's row too.

    (held leases, items tried) for _assignment_next_locked, or None when a twin request
    leased meanwhile: then the caller reads the held leases again.
    """
    a, i = Assignment._meta.db_table, Item._meta.db_table
    expires_at = _lease_expiry(campaign, now)
    sql = (
        f"WITH ins AS (INSERT INTO {a} (item_id, rater_id, state, leased_at, expires_at, finished_at, skip_reason) "
        f"SELECT %s, %s, %s, %s, %s, NULL, '' WHERE ("
        f"SELECT COUNT(*) FROM {a} a WHERE a.item_id = %s AND {_COUNTS_TOWARD_K_SQL}"
        f") < %s + (SELECT extra_raters FROM {i} WHERE id = %s) "
        f"AND ({_LIVE_LEASES_OF_RATER_SQL}) = 0 RETURNING id) "
        f"SELECT (SELECT id FROM ins), ({_LIVE_LEASES_OF_RATER_SQL}), {model_columns(Item, 'i')} FROM {i} i WHERE i.id = %s"
    )
    leased = AssignmentState.LEASED.value
    live = [rater.pk, campaign.pk, leased, now]
    params = [
        item_id,
        rater.pk,
        leased,
        now,
        expires_at,
        item_id,
        AssignmentState.SUBMITTED.value,
        leased,
        now,
        campaign.raters_per_item,
        item_id,
        *live,
        *live,
        item_id,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    assignment_id, n_live = row[0], row[1]
    if n_live:  # a twin request leased after this request's lock statement began
        return None
    if assignment_id is None:  # the item filled up meanwhile: walk on past it
        return [], [item_id]
    (item,), _ = models_from_row(row[2:], Item)
    item.campaign = campaign
    assignment = _new_lease(pk=assignment_id, item=item, rater=rater, now=now, expires_at=expires_at)
    _forget_draft(assignment)
    return [assignment], []


def _own_assignment_sql(*, lock_item: bool) -> str:
    """_get_own_assignment_locked's statement, written out (the ORM compiled it on every lease
    action, heartbeat and draft save: more time than running it). Parameters: the rater's id
    twice, the assignment's id."""
    a, i, c = Assignment._meta.db_table, Item._meta.db_table, Campaign._meta.db_table
    member, status = Campaign.raters.through._meta.db_table, RaterStatus._meta.db_table
    columns = ", ".join([model_columns(Assignment, "a"), model_columns(Item, "i"), model_columns(Campaign, "c")])
    lock = ""
    if connection.features.has_select_for_update:
        lock = " FOR UPDATE"
        if connection.features.has_select_for_update_of:
            lock += " OF a, i" if lock_item else " OF a"
    return (
        f"SELECT {columns}, "
        f"EXISTS(SELECT 1 FROM {member} m WHERE m.campaign_id = i.campaign_id AND m.user_id = %s), "
        f"EXISTS(SELECT 1 FROM {status} s WHERE s.campaign_id = i.campaign_id AND s.rater_id = %s "
        f"AND s.paused_at IS NOT NULL) "
        f"FROM {a} a JOIN {i} i ON i.id = a.item_id JOIN {c} c ON c.id = i.campaign_id WHERE a.id = %s{lock}"
    )


def _get_own_assignment_locked(*, assignment_id: int, rater, lock_item: bool = False) -> Assignment:
    """The caller's assignment, row-locked, for a lease action (heartbeat, skip, submit).

    Membership is checked here, on every lease action and not only when leasing: a rater
    removed from the campaign loses their open leases at once. The check rides on the same
    query (an EXISTS column), so it costs no round trip. With lock_item the item's row is
    locked by the same statement (the order is the same as before: assignment, then item).
    """
    with connection.cursor() as cursor:
        cursor.execute(_own_assignment_sql(lock_item=lock_item), [rater.pk, rater.pk, assignment_id])
        row = cursor.fetchone()
    # Someone else's assignment is reported exactly like a missing one: no existence leak.
    if row is None:
        raise ApplicationError(gettext("No such assignment."), status_code=404)
    (assignment, item, campaign), (is_member, is_paused) = models_from_row(row, Assignment, Item, Campaign)
    if assignment.rater_id != rater.pk:
        raise ApplicationError(gettext("No such assignment."), status_code=404)
    item.campaign = campaign
    assignment.item = item
    assignment.rater_is_paused = bool(is_paused)
    if not is_member:
        raise ApplicationError(
            gettext("You are no longer a rater of this campaign; this lease cannot be used."),
            status_code=403,
            extra={"code": "not_a_member"},
        )
    return assignment


def _pause_check_locked(*, assignment: Assignment, rater, now) -> None:
    """409 "paused" for a lease action of a paused rater, at no extra query on a live lease.

    The EXISTS column of _get_own_assignment_locked answers for a pause committed before that
    statement began. A pause that committed while the statement waited on the assignment's
    lock may be missing from it (PostgreSQL re-reads only the locked row), but such a pause
    released this very lease (state expired), and an expired lease is asked about again here.
    """
    live = assignment.state == AssignmentState.LEASED and assignment.expires_at > now
    known: bool | None = True if getattr(assignment, "rater_is_paused", False) else None
    if known is None and live:
        known = False  # no pause before the statement, and none since: it would have expired the lease
    rater_paused_check(campaign_id=assignment.item.campaign_id, rater=rater, known=known)


def _reclaim_or_conflict(*, assignment: Assignment, now, action: str) -> None:
    """An expired lease may be taken up again only if its slot is still free (a gold item has
    no k, so always)."""
    if assignment.item.is_gold:
        return
    wanted = assignment.item.raters_wanted
    if _count_active(item_id=assignment.item_id, now=now, exclude_id=assignment.pk) >= wanted:
        message = {
            "heartbeat": gettext(
                "Your lease on this item expired and its %(wanted)d slots were taken by other raters; "
                "the heartbeat was not recorded."
            ),
            "submission": gettext(
                "Your lease on this item expired and its %(wanted)d slots were taken by other raters; "
                "the submission was not recorded."
            ),
        }[action]
        raise Conflict(message % {"wanted": wanted}, extra={"code": "lease_expired"})


@transaction.atomic
def assignment_heartbeat(*, assignment_id: int, rater, now=None) -> Assignment:
    """Extends an open lease by the campaign's lease length (or re-takes an expired one whose
    slot is still free). Holds the assignment and item row locks."""
    now = now or timezone.now()
    assignment = _get_own_assignment_locked(assignment_id=assignment_id, rater=rater)
    if assignment.state in (AssignmentState.SUBMITTED, AssignmentState.SKIPPED):
        raise Conflict(f"This assignment is already {assignment.state}.", extra={"code": assignment.state})
    _pause_check_locked(assignment=assignment, rater=rater, now=now)
    _lock_item(assignment.item_id)
    if assignment.state == AssignmentState.EXPIRED or assignment.expires_at <= now:
        _reclaim_or_conflict(assignment=assignment, now=now, action="heartbeat")
    assignment.state = AssignmentState.LEASED
    assignment.expires_at = _lease_expiry(assignment.item.campaign, now)
    assignment.finished_at = None
    assignment.save(update_fields=["state", "expires_at", "finished_at"])
    # The rater's preloaded (lookahead) lease lives as long as the one they work on, so a
    # long item never costs them the image already loaded for the next one.
    Assignment.objects.filter(
        rater=rater, item__campaign=assignment.item.campaign, state=AssignmentState.LEASED, expires_at__gt=now
    ).exclude(pk=assignment.pk).update(expires_at=assignment.expires_at)
    return assignment


@transaction.atomic
def assignment_skip(*, assignment_id: int, rater, reason: str, now=None) -> Assignment:
    """Gives the item up for good. A skip never counts toward k; the rater never gets it again."""
    now = now or timezone.now()
    reason = reason.strip()
    if not reason:
        raise ApplicationError(gettext("Say why you skip this item."), field="reason")
    assignment = _get_own_assignment_locked(assignment_id=assignment_id, rater=rater)
    if assignment.state == AssignmentState.SKIPPED:
        return assignment
    if assignment.state == AssignmentState.SUBMITTED:
        raise Conflict(
            gettext("This assignment is already submitted; it cannot be skipped."), extra={"code": "submitted"}
        )
    assignment.state = AssignmentState.SKIPPED
    assignment.finished_at = now
    assignment.skip_reason = reason[:500]
    assignment.save(update_fields=["state", "finished_at", "skip_reason"])
    Draft.objects.filter(assignment_id=assignment.pk).delete()  # a skipped lease keeps no draft
    _forget_draft(assignment)
    return assignment


@dataclass(frozen=True)
class AnnotationInput:
    implausible_points: list[list[float]] = field(default_factory=list)
    misaligned_points: list[list[float]] = field(default_factory=list)
    misaligned_words: list[int] = field(default_factory=list)
    scores: dict[str, int] = field(default_factory=dict)
    time_spent_ms: int = 0
    suggestion_shown: bool = False
    suggestion_accepted: bool = False

    def content(self) -> tuple:
        """What makes two submissions 'the same answer' (timing and hints excluded)."""
        return (
            [[float(x), float(y)] for x, y in self.implausible_points],
            [[float(x), float(y)] for x, y in self.misaligned_points],
            sorted(self.misaligned_words),
            {name: int(self.scores[name]) for name in SCORE_NAMES},
        )


def _annotation_content(annotation: Annotation) -> tuple:
    return (
        [[float(x), float(y)] for x, y in annotation.implausible_points],
        [[float(x), float(y)] for x, y in annotation.misaligned_points],
        sorted(annotation.misaligned_words),
        annotation.scores(),
    )


def _annotation_insert_and_mark_submitted(*, annotation: Annotation, assignment: Assignment) -> None:
    """Inserts the answer, marks its assignment submitted and deletes its draft in one statement
    (PostgreSQL's data-modifying WITH): one round trip instead of an INSERT, an UPDATE and a
    DELETE. The caller holds the assignment's row lock; the writes commit or roll back together.
    """
    annotation.created_at = timezone.now()
    columns = [
        "assignment_id",
        "item_id",
        "rater_id",
        "implausible_points",
        "misaligned_points",
        "misaligned_words",
        *SCORE_NAMES,
        "time_spent_ms",
        "suggestion_shown",
        # Columns without a database default would fail here: this INSERT bypasses the ORM.
        "suggestion_accepted",
        "created_at",
    ]
    json_columns = {"implausible_points", "misaligned_points", "misaligned_words"}
    values = [
        json.dumps(getattr(annotation, name)) if name in json_columns else getattr(annotation, name) for name in columns
    ]
    placeholders = ", ".join("%s::jsonb" if name in json_columns else "%s" for name in columns)
    sql = (
        f"WITH done AS (UPDATE {Assignment._meta.db_table} SET state = %s, finished_at = %s WHERE id = %s), "
        f"gone AS (DELETE FROM {Draft._meta.db_table} WHERE assignment_id = %s) "
        f"INSERT INTO {Annotation._meta.db_table} ({', '.join(columns)}) VALUES ({placeholders}) RETURNING id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [assignment.state, assignment.finished_at, assignment.pk, assignment.pk, *values])
        annotation.pk = cursor.fetchone()[0]
    annotation._state.adding = False
    annotation._state.db = connection.alias


def _item_count_submitted(*, item: Item, now) -> bool:
    """Recounts the item's answers and completes it at k; returns True if this completed it.

    One UPDATE ... RETURNING under the item's row lock (held by the caller), instead of a
    COUNT, then an UPDATE: the count is taken from the table, so it stays exact whatever
    n_submitted said before.
    """
    i, a, x = Item._meta.db_table, Assignment._meta.db_table, Annotation._meta.db_table
    # Answers that count toward k: submitted and not excluded. A gold item never completes.
    count = (
        f"(SELECT COUNT(*) FROM {a} a WHERE a.item_id = %s AND a.state = %s AND NOT EXISTS "
        f"(SELECT 1 FROM {x} x WHERE x.assignment_id = a.id AND x.excluded_at IS NOT NULL))"
    )
    sql = (
        f"UPDATE {i} SET n_submitted = {count}, completed_at = CASE WHEN completed_at IS NULL AND NOT is_gold AND "
        f"{count} >= %s THEN %s ELSE completed_at END WHERE id = %s RETURNING n_submitted, completed_at"
    )
    submitted = AssignmentState.SUBMITTED.value
    was_complete = item.completed_at is not None
    with connection.cursor() as cursor:
        cursor.execute(sql, [item.pk, submitted, item.pk, submitted, item.raters_wanted, now, item.pk])
        item.n_submitted, completed_at = cursor.fetchone()
    item.completed_at = completed_at
    return not was_complete and completed_at is not None


@transaction.atomic
def annotation_submit(*, assignment_id: int, rater, data: AnnotationInput, now=None) -> tuple[Annotation, bool]:
    """Stores the rater's answer. Returns (annotation, created).

    Preconditions checked here (shape checks are the API serializer's): the assignment is the
    caller's; word indices fall inside the item's prompt; a late submit only takes a free slot;
    a repeat of the same answer is a no-op and a different second answer is a conflict.
    On the k-th submission the item is marked complete, and the item_completed hook
    (annotation/hooks.py; aggregation enqueues the item there) runs after commit. Holds the
    assignment and item row locks.
    """
    now = now or timezone.now()
    assignment = _get_own_assignment_locked(assignment_id=assignment_id, rater=rater, lock_item=True)
    item = assignment.item
    if assignment.state != AssignmentState.SUBMITTED:
        _pause_check_locked(assignment=assignment, rater=rater, now=now)
    n_words = len(item.words)
    bad = [i for i in data.misaligned_words if not 0 <= i < n_words]
    if bad:
        raise ApplicationError(
            gettext("word index %(index)d is outside the prompt, which has %(n)d words (0..%(last)d)")
            % {"index": bad[0], "n": n_words, "last": n_words - 1},
            field="misaligned_words",
        )
    if assignment.state == AssignmentState.SUBMITTED:
        existing = assignment.annotation
        if _annotation_content(existing) == data.content():
            return existing, False
        raise Conflict(gettext("You already submitted a different answer for this item."), extra={"code": "submitted"})
    if assignment.state == AssignmentState.SKIPPED:
        raise Conflict(gettext("You skipped this item; it cannot be submitted."), extra={"code": "skipped"})
    if assignment.state == AssignmentState.EXPIRED or assignment.expires_at <= now:
        _reclaim_or_conflict(assignment=assignment, now=now, action="submission")

    implausible, misaligned, words, scores = data.content()
    annotation = Annotation(
        assignment=assignment,
        item=item,
        rater=rater,
        implausible_points=implausible,
        misaligned_points=misaligned,
        misaligned_words=words,
        time_spent_ms=data.time_spent_ms,
        suggestion_shown=data.suggestion_shown,
        suggestion_accepted=data.suggestion_accepted,
        **scores,
    )
    assignment.state = AssignmentState.SUBMITTED
    assignment.finished_at = now
    if connection.vendor == "postgresql":
        _annotation_insert_and_mark_submitted(annotation=annotation, assignment=assignment)
    else:
        annotation.save(force_insert=True)
        assignment.save(update_fields=["state", "finished_at"])
        Draft.objects.filter(assignment_id=assignment.pk).delete()
    _forget_draft(assignment)

    if item.is_gold:
        # Never counted, never completed: a gold answer is only scored against the reference.
        gold.gold_answer_record(annotation=annotation, item=item, campaign=item.campaign, rater=rater, now=now)
        return annotation, True
    item_recount_submitted(item=item, now=now)
    return annotation, True


def item_recount_submitted(*, item: Item, now) -> bool:
    """Recounts an item's answers that count toward k and completes it at k; the item_completed
    hook runs after commit if this completed it. Returns whether it did. The caller holds the
    item's row lock (submit, gold_remove, and the quality actions that exclude answers)."""
    if _item_count_submitted(item=item, now=now):
        item_id = item.pk
        transaction.on_commit(lambda: hooks.item_completed_send(item_id=item_id))
        return True
    return False


@transaction.atomic
def leases_expire(*, now=None) -> int:
    """Marks every lease past its expiry as expired and deletes the drafts of leases that are no
    longer held; returns how many leases expired. Safe to run anywhere: the UPDATE re-checks
    expires_at per row, so a lease extended meanwhile is left alone, and a draft save waits on
    the row locks the UPDATE holds, then finds its lease expired."""
    now = now or timezone.now()
    expired = Assignment.objects.filter(state=AssignmentState.LEASED, expires_at__lte=now).update(
        state=AssignmentState.EXPIRED, finished_at=now
    )
    Draft.objects.exclude(assignment__state=AssignmentState.LEASED).delete()
    return expired


@transaction.atomic
def item_request_extra_rater(*, item_id: int) -> Item:
    """Asks for one more distinct rater on an item (a lead's decision after poor agreement).

    Holds the item's row lock. The item re-enters the queue (completed_at cleared) until the
    extra answer arrives; then it completes again and its aggregate is recomputed from all
    answers. Its current aggregate stays in place meanwhile.
    """
    item = _lock_item(item_id)
    item.extra_raters += 1
    item.completed_at = None
    # Offered first: above every other item of the campaign.
    top = Item.objects.filter(campaign_id=item.campaign_id).aggregate(m=Max("priority"))["m"] or 0.0
    item.priority = max(top, item.priority) + 1.0
    item.save(update_fields=["extra_raters", "completed_at", "priority"])
    return item


def item_priorities_set(*, priorities: Mapping[int, float]) -> int:
    """Rewrites the queue priority of the given items (item id -> priority); returns how many.

    The one way other apps (the learning loop's acquisition order) reorder the queue. Priority
    only orders the queue: the k-raters rules of the lease engine are untouched.
    """
    for item_id, value in priorities.items():
        if not math.isfinite(value):
            raise ValueError(f"priority of item {item_id} must be finite, not {value}")
    items = list(Item.objects.filter(pk__in=list(priorities)).only("pk", "priority"))
    for item in items:
        item.priority = priorities[item.pk]
    Item.objects.bulk_update(items, ["priority"], batch_size=1000)
    return len(items)


def item_mark_labelled(*, item_id: int, now=None) -> bool:
    """Marks an item complete without raters (it arrived labelled, e.g. an imported release
    record), so it never enters the raters' queue. Returns False if it already was complete."""
    now = now or timezone.now()
    return bool(Item.objects.filter(pk=item_id, completed_at__isnull=True).update(completed_at=now))


# --------------------------------------------------------------------------- campaigns


@transaction.atomic
def campaign_add_raters(*, campaign: Campaign, users) -> None:
    from richhf_site.roles import RATER, user_add_role

    for user in users:
        user_add_role(user=user, role=RATER)
        campaign.raters.add(user)
