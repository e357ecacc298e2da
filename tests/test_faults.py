"""Faults on the real services: a dead or hung Redis, PostgreSQL refusing connections, a
gunicorn worker killed mid-submit. No fault may turn into a 500 or a lie: a committed answer
gets its 2xx, work with a reconciler is finished once the service is back, and an action that
cannot be done gets a clear 503 with nothing half-written.

Every service here is this test's own: a redis-server on a free port, a TCP proxy in front of
the shared PostgreSQL, a gunicorn on a free port. The shared Redis and PostgreSQL are never
stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from aggregation.dashboard.models import CampaignStats
from aggregation.exports import services as export_services
from aggregation.exports import tasks as export_tasks
from aggregation.exports.models import ExportJob
from aggregation.models import ItemAggregate
from aggregation.services import aggregates_reconcile
from annotation.models import Annotation, Item
from richhf_site.celery import app as celery_app
from tests.conftest import (
    ARTIFACTS,
    ROOT,
    api_client_for,
    start_celery_worker,
    stop_celery_worker,
    valid_submission,
    wait_for,
)

# ----------------------------------------------------------------------------- our services


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A throwaway redis-server without persistence: stopping it loses every queued message,
    which is what a crashed broker does."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (make test installs it)")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: _accepts(self.port), timeout=10, interval=0.05, what=f"redis on {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # a crash, not a shutdown
            self.proc.wait(timeout=10)
        self.proc = None


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target, and on demand refuses new connections (closes its
    listening socket) or holds a connection at the client's COMMIT, before or after forwarding
    it, to stop a request at that exact point."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.hold_commit: str | None = None  # None, "before" (COMMIT not sent) or "after" (sent)
        self.held = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._stop = False

    def accept(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        thread = threading.Thread(target=self._accept_loop, args=(listener,), daemon=True)
        thread.start()

    def refuse(self) -> None:
        """New connections are refused (ECONNREFUSED); open ones are cut, as a restart does."""
        if self._listener is not None:
            # shutdown wakes the accept() blocked in the other thread; close alone would not.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        for sock in list(self._open):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    _open: set[socket.socket] = set()

    def close(self) -> None:
        self._stop = True
        self.refuse()

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            self._open |= {client, upstream}
            muted = threading.Event()  # set: the server's replies on this connection are dropped
            threading.Thread(target=self._pipe, args=(client, upstream, muted, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, muted, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, muted: threading.Event, from_client: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if from_client and self.hold_commit and b"COMMIT" in data:
                    mode, self.hold_commit = self.hold_commit, None
                    if mode == "after":
                        muted.set()  # the server commits; its answer never reaches the web worker
                        dst.sendall(data)
                    # "before": the COMMIT is swallowed. Either way the web worker now waits for
                    # an answer that never comes, until it is killed and its socket closes.
                    self.held.set()
                    continue
                if not (muted.is_set() and not from_client):
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
                self._open.discard(sock)


@contextlib.contextmanager
def celery_broker(url: str) -> Iterator[None]:
    """Points this process's Celery app (what the web side publishes with) at another broker.

    broker_write_url, since Celery reads broker_url from the CELERY_BROKER_URL environment
    variable before its configuration."""
    old = celery_app.conf.broker_write_url

    def reset() -> None:
        celery_app._pool = None
        with contextlib.suppress(AttributeError, KeyError):
            celery_app.__dict__["amqp"]._producer_pool = None

    celery_app.conf.broker_write_url = url
    reset()
    try:
        yield
    finally:
        celery_app.conf.broker_write_url = old
        reset()


@contextlib.contextmanager
def hung_broker() -> Iterator[str]:
    """A port that accepts TCP connections and never answers: a hung Redis."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    try:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    finally:
        listener.close()


def lease(client: APIClient, campaign_id: int) -> int:
    response = client.post(reverse("api:next-item", args=[campaign_id]), {}, format="json")
    assert response.status_code in (200, 201), response.content
    return response.json()["assignment"]["id"]


def submit(client: APIClient, assignment_id: int):
    return client.post(reverse("api:submit", args=[assignment_id]), valid_submission(), format="json")


@contextlib.contextmanager
def live_run_of(job_id: int) -> Iterator[None]:
    """Another worker's live run of an export job: its own connection holding the run lock."""
    import psycopg2

    db = connection.settings_dict
    other = psycopg2.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"] or "postgres",
        password=db["PASSWORD"] or None,
        dbname=db["NAME"],
    )
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", [export_services._RUN_LOCK_NAMESPACE, job_id])
        yield
    finally:
        other.close()
        # The server drops the lock when that backend exits, a moment after the close.
        wait_for(lambda: not _advisory_lock_held(job_id), timeout=10, what="the dead run's lock to go")


def _advisory_lock_held(job_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND objid = %s",
            [export_services._RUN_LOCK_NAMESPACE, job_id],
        )
        return bool(cursor.fetchone()[0])


# ----------------------------------------------------------------------------- broker down


@pytest.mark.django_db(transaction=True)
def test_submits_completing_items_with_redis_down_answer_201_and_the_reconciler_enqueues_them(
    raters, make_item, monkeypatch
):
    campaign, users = raters
    items = [make_item(campaign, prompt=f"a red fox {n}") for n in range(2)]
    with celery_broker(f"redis://127.0.0.1:{free_port()}/0"):  # nothing listens there
        for user in users:
            client = api_client_for(user)
            for _ in items:
                started = time.monotonic()
                response = submit(client, lease(client, campaign.pk))
                assert response.status_code == 201, response.content
                assert time.monotonic() - started < 5
        # An identical retry of a committed answer is answered 200, not a conflict.
        assert submit(client, response.json()["assignment"]["id"]).status_code == 200
    assert Annotation.objects.filter(item__in=items).count() == 6
    assert Item.objects.filter(pk__in=[i.pk for i in items], completed_at__isnull=False).count() == 2
    sent: list[int] = []
    monkeypatch.setattr("aggregation.tasks.aggregate_item.delay", lambda item_id: sent.append(item_id))
    assert sorted(aggregates_reconcile(grace=timedelta(0))) == sorted(i.pk for i in items)
    assert sorted(sent) == sorted(i.pk for i in items)


@pytest.mark.django_db(transaction=True)
def test_a_hung_redis_costs_a_submit_seconds_not_minutes(raters, make_item):
    campaign, users = raters
    make_item(campaign)
    with hung_broker() as url, celery_broker(url):
        for user in users:
            client = api_client_for(user)
            started = time.monotonic()
            assert submit(client, lease(client, campaign.pk)).status_code == 201
        # Only the item-completing submit publishes; the socket timeouts bound it.
        assert time.monotonic() - started < 10
    assert Item.objects.get(campaign=campaign).completed_at is not None


@pytest.mark.django_db(transaction=True)
def test_export_requested_with_redis_down_is_queued_then_reconciled_once(raters, make_item, make_user, monkeypatch):
    campaign, users = raters
    admin = api_client_for(make_user("boss", "admin"))
    url = reverse("exports:campaign-exports", args=[campaign.pk])
    with celery_broker(f"redis://127.0.0.1:{free_port()}/0"):
        response = admin.post(url, {"format": "jsonl"}, format="json")
    assert response.status_code == 202, response.content
    job = ExportJob.objects.get(pk=response.json()["id"])
    assert job.status == ExportJob.Status.QUEUED

    sent: list[int] = []
    monkeypatch.setattr(export_tasks.run_export_job, "delay", lambda job_id: sent.append(job_id))
    assert export_services.export_jobs_reconcile() == []  # young: left to its own message
    assert export_services.export_jobs_reconcile(queued_grace=timedelta(0)) == [job.pk]
    # Two deliveries of the same job (the lost message found again): one export, run once.
    export_tasks.run_export_job.run(job.pk)
    job.refresh_from_db()
    assert job.status == ExportJob.Status.SUCCEEDED, job.error
    first = (job.archive.name, job.sha256, job.finished_at)
    export_tasks.run_export_job.run(job.pk)
    job.refresh_from_db()
    assert (job.archive.name, job.sha256, job.finished_at) == first
    assert export_services.export_jobs_reconcile(queued_grace=timedelta(0)) == []  # finished: never redone

    # A run whose worker died mid-way (its status still "running"): PostgreSQL dropped the
    # run lock with its connection, so the reconciler sees it at once; a live run is left alone.
    stuck = ExportJob.objects.create(campaign=campaign, format="jsonl", status=ExportJob.Status.RUNNING)
    ExportJob.objects.filter(pk=stuck.pk).update(started_at=job.finished_at)
    with live_run_of(stuck.pk):
        assert export_services.export_jobs_reconcile(queued_grace=timedelta(0)) == []
        export_tasks.run_export_job.run(stuck.pk)  # a duplicate message while it runs
        stuck.refresh_from_db()
        assert stuck.status == ExportJob.Status.RUNNING
    assert export_services.export_jobs_reconcile(queued_grace=timedelta(0)) == [stuck.pk]
    export_tasks.run_export_job.run(stuck.pk)
    stuck.refresh_from_db()
    assert stuck.status == ExportJob.Status.SUCCEEDED, stuck.error
    export_tasks.run_export_job.run(999_999)  # deleted job: nothing to do, no error


@pytest.mark.django_db(transaction=True)
def test_refresh_with_redis_down_answers_503_json_and_leaves_no_refreshing_mark(make_campaign, make_user, monkeypatch):
    campaign = make_campaign("dash")
    lead = api_client_for(make_user("lead", "lead"))
    url = reverse("dashboard:api-refresh", args=[campaign.pk])
    with celery_broker(f"redis://127.0.0.1:{free_port()}/0"):
        response = lead.post(url)
    assert response.status_code == 503
    assert response["Content-Type"].startswith("application/json")
    assert "unreachable" in response.json()["detail"]
    assert CampaignStats.objects.get(campaign=campaign).refresh_requested_at is None
    sent: list[int] = []
    monkeypatch.setattr("aggregation.dashboard.tasks.recompute_campaign_stats.delay", lambda cid: sent.append(cid))
    assert lead.post(url).status_code == 202  # the next click, broker back, is not deduplicated away
    assert sent == [campaign.pk]


@pytest.mark.django_db(transaction=True)
def test_retrain_requested_with_redis_down_is_accepted_and_left_queued_for_the_tick(
    make_campaign, make_user, monkeypatch
):
    from aggregation.learning.models import ModelVersion, VersionStatus
    from aggregation.learning.services import runs, schedule

    campaign = make_campaign("learn")
    lead = api_client_for(make_user("lead", "lead"))
    with celery_broker(f"redis://127.0.0.1:{free_port()}/0"):
        response = lead.post(f"/api/learning/campaigns/{campaign.pk}/retrain/")
    assert response.status_code == 202, response.content  # the run is recorded; only its message is late
    version = ModelVersion.objects.get(campaign=campaign)
    assert version.status == VersionStatus.QUEUED
    # learning.tick re-enqueues a version queued for longer than twice the staleness.
    sent: list[int] = []
    monkeypatch.setattr("aggregation.learning.tasks.retrain.delay", lambda vid: sent.append(vid))
    schedule.learning_tick(now=version.created_at + 2 * runs.STALE_AFTER + timedelta(seconds=1))
    assert sent == [version.pk]


# ----------------------------------------------------------------------------- database refused


@contextlib.contextmanager
def database_through(proxy: TcpProxy) -> Iterator[None]:
    """This process's connection to the test database goes through the proxy."""
    db = connection.settings_dict
    old = (db["HOST"], db["PORT"])
    connection.close()
    db["HOST"], db["PORT"] = "127.0.0.1", proxy.port
    try:
        yield
    finally:
        connection.close()
        db["HOST"], db["PORT"] = old


@pytest.mark.django_db(transaction=True)
def test_postgresql_refusing_connections_gives_clean_503s_and_writes_nothing(raters, make_item):
    campaign, (rater, *_) = raters
    make_item(campaign)
    token = Token.objects.create(user=rater)  # real authentication: it needs the database too
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assignment_id = lease(client, campaign.pk)
    pages = Client()
    pages.force_login(rater)
    db = connection.settings_dict
    proxy = TcpProxy((db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)))
    proxy.accept()
    try:
        with database_through(proxy):
            assert client.get(reverse("api:my-assignments")).status_code == 200
            proxy.refuse()
            requests = [
                lambda: submit(client, assignment_id),
                lambda: client.get(reverse("api:my-assignments")),
                lambda: client.post(reverse("api:next-item", args=[campaign.pk]), {}, format="json"),
            ]
            for send in requests:
                response = send()
                # The test client skips close_old_connections, which a real request cycle
                # runs; close the broken connection as it would.
                connection.close()
                assert response.status_code == 503, response.content
                assert response["Content-Type"].startswith("application/json")
                assert "database" in response.json()["detail"]
                assert response["Retry-After"]
            page = pages.get("/")
            assert page.status_code == 503 and b"database" in page.content
            connection.close()
            proxy.accept()  # PostgreSQL is back a few seconds later
            assert submit(client, assignment_id).status_code == 201
            assert submit(client, assignment_id).status_code == 200  # the identical retry
    finally:
        proxy.close()
    assert Annotation.objects.filter(assignment_id=assignment_id).count() == 1


# ----------------------------------------------------------------------------- redis stopped, end to end


@pytest.mark.slow
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_redis_stopped_while_raters_submit_and_an_export_is_requested(raters, make_item, make_user, tmp_path, settings):
    """No 5xx while Redis is down; once it is back, beat's reconcilers finish everything."""
    campaign, users = raters
    items = [make_item(campaign, prompt=f"a blue whale {n}") for n in range(3)]
    admin = api_client_for(make_user("boss", "admin"))
    lead = api_client_for(make_user("lead", "lead"))
    redis = RedisServer(free_port())
    redis.start()
    settings.MEDIA_ROOT = tmp_path / "media"
    worker = start_celery_worker(
        name="faults-redis",
        queues=[django_settings.CELERY_TASK_DEFAULT_QUEUE],
        var_dir=tmp_path / "var",
        media_root=settings.MEDIA_ROOT,
        concurrency=1,
        beat=True,
        extra_env={
            "CELERY_BROKER_URL": redis.url,
            "RICHHF_RECONCILE_EVERY_S": "2",
            "RICHHF_RECONCILE_GRACE_S": "0",
            "RICHHF_EXPORT_RECONCILE_EVERY_S": "2",
            "RICHHF_EXPORT_QUEUED_GRACE_S": "0",
            "RICHHF_DASHBOARD_EVERY_S": "3600",
            "RICHHF_LEARNING_TICK_S": "3600",
        },
    )
    try:
        with celery_broker(redis.url):
            redis.stop()
            statuses: list[int] = []
            for user in users:
                client = api_client_for(user)
                for _ in items:
                    statuses.append(submit(client, lease(client, campaign.pk)).status_code)
            export = admin.post(
                reverse("exports:campaign-exports", args=[campaign.pk]), {"format": "jsonl"}, format="json"
            )
            refresh = lead.post(reverse("dashboard:api-refresh", args=[campaign.pk]))
            assert statuses == [201] * 9
            assert export.status_code == 202, export.content
            assert refresh.status_code == 503 and refresh.json()["detail"]  # no reconciler: retry later
            assert not ItemAggregate.objects.filter(item__in=items).exists()
            redis.start()  # empty: every message of the outage is lost
            wait_for(
                lambda: ItemAggregate.objects.filter(item__in=items).count() == len(items),
                timeout=45,
                what="the reconciler to aggregate every item",
            )
            job_id = export.json()["id"]
            wait_for(
                lambda: ExportJob.objects.get(pk=job_id).status == ExportJob.Status.SUCCEEDED,
                timeout=30,
                what="the export reconciler to run the export",
            )
            assert lead.post(reverse("dashboard:api-refresh", args=[campaign.pk])).status_code == 202
    finally:
        stop_celery_worker(worker)
        redis.stop()
    job = ExportJob.objects.get(pk=job_id)
    assert job.items_exported == len(items) and job.sha256
    assert Annotation.objects.filter(item__in=items).count() == 9


# ----------------------------------------------------------------------------- gunicorn worker killed


def _http(method: str, url: str, token: str, body: dict | None = None, timeout: float = 30) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode() if body is not None else b"{}",
        method=method,
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@contextlib.contextmanager
def gunicorn_through(proxy: TcpProxy, tmp_path: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    db = connection.settings_dict
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@127.0.0.1:{proxy.port}/{db['NAME']}",
        "RICHHF_VAR_DIR": str(tmp_path / "var"),
        "DJANGO_MEDIA_ROOT": str(tmp_path / "media"),
    }
    log = (ARTIFACTS / f"gunicorn-faults-{os.getpid()}.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "richhf_site.wsgi", "-w", "2", "-b", f"127.0.0.1:{port}", "--timeout", "60"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(lambda: _accepts(port), timeout=30, what="gunicorn to listen")
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


def _gunicorn_workers(master: int) -> list[int]:
    out = subprocess.run(["ps", "--ppid", str(master), "-o", "pid="], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split()]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("hold", "retry_status"), [("before", 201), ("after", 200)])
def test_a_gunicorn_worker_killed_mid_submit_then_the_retry_is_answered_correctly(
    raters, make_item, tmp_path, hold, retry_status
):
    """Killed before its COMMIT reached PostgreSQL: nothing stored, the retry stores it (201).
    Killed after the COMMIT, before the answer: stored, the identical retry gets 200. Either
    way exactly one annotation."""
    campaign, (rater, *_) = raters
    make_item(campaign)
    token = Token.objects.create(user=rater).key
    db = connection.settings_dict
    proxy = TcpProxy((db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)))
    proxy.accept()
    try:
        with gunicorn_through(proxy, tmp_path) as (master, base):
            code, leased = _http("POST", f"{base}/api/campaigns/{campaign.pk}/next/", token)
            assert code in (200, 201), leased
            assignment_id = leased["assignment"]["id"]
            submit_url = f"{base}/api/assignments/{assignment_id}/submit/"
            outcome: dict[str, object] = {}

            def first_try() -> None:
                try:
                    outcome["answer"] = _http("POST", submit_url, token, valid_submission())
                except (OSError, urllib.error.URLError) as exc:  # the worker died under it
                    outcome["error"] = exc

            proxy.hold_commit = hold
            thread = threading.Thread(target=first_try)
            thread.start()
            assert proxy.held.wait(20), "the submit never reached its COMMIT"
            workers = _gunicorn_workers(master.pid)
            assert len(workers) == 2
            for pid in workers:
                os.kill(pid, signal.SIGKILL)
            thread.join(30)
            assert "error" in outcome, outcome  # the rater saw the request fail
            wait_for(lambda: len(_gunicorn_workers(master.pid)) == 2, timeout=30, what="gunicorn to respawn")
            expected_before_retry = 0 if hold == "before" else 1
            wait_for(
                lambda: Annotation.objects.filter(assignment_id=assignment_id).count() == expected_before_retry,
                timeout=10,
                what="PostgreSQL to settle the killed transaction",
            )
            code, body = wait_for(
                lambda: _retry_when_up(submit_url, token), timeout=30, what="the retry to be answered"
            )
            assert code == retry_status, body
            assert body["assignment"]["state"] == "submitted"
    finally:
        proxy.close()
    assert Annotation.objects.filter(assignment_id=assignment_id).count() == 1


def _retry_when_up(url: str, token: str) -> tuple[int, dict] | None:
    try:
        return _http("POST", url, token, valid_submission())
    except (OSError, urllib.error.URLError):
        return None  # workers still booting
