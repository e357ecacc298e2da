"""Shared fixtures: real PostgreSQL (through pytest-django), real Redis, real Celery worker.

`make test` exports DATABASE_URL and CELERY_BROKER_URL for the local services. With CI=true
a missing service fails the run; it is never skipped.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from PIL import Image
from rest_framework.test import APIClient

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "build" / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"

# Playwright's sync API runs an event loop in the test thread; the ORM calls the browser
# tests make there are ordinary synchronous ones.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
# Debian's Chromium, as the project's browser tests launch it (no network, no sandbox as root).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


# Fixtures that start a real Celery worker or drive Chromium. `make test-fast` deselects the
# `worker` and `browser` markers, so a test that reaches one of these fixtures (directly or
# through another fixture) gets the marker here even when its module forgot to declare it.
WORKER_FIXTURES = frozenset({"celery_worker_proc"})
BROWSER_FIXTURES = frozenset({"page", "context", "new_context", "browser", "launch_browser", "browser_type"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & WORKER_FIXTURES and item.get_closest_marker("worker") is None:
            item.add_marker(pytest.mark.worker)
        if fixtures & BROWSER_FIXTURES and item.get_closest_marker("browser") is None:
            item.add_marker(pytest.mark.browser)


def pytest_sessionstart(session):
    engine = settings.DATABASES["default"]["ENGINE"]
    if os.environ.get("CI", "").lower() == "true" and "postgresql" not in engine:
        raise pytest.UsageError("CI runs against PostgreSQL: run the suite through `make test` (DATABASE_URL is unset)")


@pytest.fixture(scope="session")
def django_db_modify_db_settings():
    """One test database per pytest run, so two runs on one machine never drop each other's."""
    suffix = os.environ.get("RICHHF_TEST_DB_SUFFIX") or str(os.getpid())
    for db in settings.DATABASES.values():
        if "sqlite" not in db["ENGINE"]:
            db.setdefault("TEST", {})["NAME"] = f"test_{db['NAME']}_{suffix}"


@pytest.fixture(autouse=True)
def _test_settings(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    # PBKDF2's deliberate slowness costs ~0.7 s per user; tests need no protection.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def png_bytes(width: int = 64, height: int = 48, seed: int = 0) -> bytes:
    rng = random.Random(seed)
    img = Image.new("RGB", (width, height), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    # A few distinct pixels so two seeds never give the same bytes.
    for _ in range(8):
        img.putpixel((rng.randrange(width), rng.randrange(height)), (rng.randrange(256), 0, 0))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def make_user(django_user_model):
    from richhf_site.roles import user_add_role

    def make(username: str, *roles: str, password: str = "pw-for-tests"):
        user = django_user_model.objects.create_user(username=username, password=password)
        for role in roles:
            user_add_role(user=user, role=role)
        return user

    return make


@pytest.fixture
def make_campaign():
    from annotation.models import Campaign

    def make(name: str = "c1", **kwargs):
        return Campaign.objects.create(name=name, **kwargs)

    return make


@pytest.fixture
def make_item():
    from annotation.services import ItemInput, item_create

    counter = {"n": 0}

    def make(campaign, prompt: str = "a yellow cat on a red sofa", width: int = 64, height: int = 48, **kwargs):
        counter["n"] += 1
        item, created = item_create(
            campaign=campaign,
            data=ItemInput(
                image_bytes=png_bytes(width, height, seed=counter["n"] * 7919 + campaign.pk),
                filename=f"img{counter['n']}.png",
                prompt=prompt,
                **kwargs,
            ),
        )
        assert created
        return item

    return make


@pytest.fixture
def raters(make_user, make_campaign):
    """Three raters invited to a fresh campaign, plus an outsider rater who is not invited."""
    from annotation.services import campaign_add_raters

    campaign = make_campaign("rated")
    users = [make_user(f"r{i}", "rater") for i in range(1, 4)]
    campaign_add_raters(campaign=campaign, users=users)
    return campaign, users


def api_client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def valid_submission(**overrides) -> dict:
    body = {
        "implausible_points": [[0.25, 0.5]],
        "misaligned_points": [],
        "misaligned_words": [1],
        "scores": {"plausibility": 4, "alignment": 3, "aesthetics": 5, "overall": 4},
        "time_spent_ms": 12000,
    }
    body.update(overrides)
    return body


# --------------------------------------------------------------------------- services


def _service_up(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def redis_broker_url() -> str:
    url = settings.CELERY_BROKER_URL
    if not url.startswith("redis://"):
        pytest.fail(f"the worker tests need Redis as broker; CELERY_BROKER_URL is {url!r} (run `make test`)")
    if not _service_up(["redis-cli", "-u", url, "ping"]):
        pytest.fail(f"Redis at {url} does not answer (make test starts it)")
    # Only this run's queue: another suite on the same Redis keeps its own messages.
    subprocess.run(["redis-cli", "-u", url, "del", settings.CELERY_TASK_DEFAULT_QUEUE], check=True, capture_output=True)
    return url


def start_celery_worker(
    *,
    name: str,
    queues: list[str],
    var_dir: Path,
    media_root: Path,
    extra_env: dict | None = None,
    concurrency: int = 2,
    beat: bool = False,
):
    """A real `celery worker` process against the pytest-django test database, on Redis
    (or the broker extra_env names), with an embedded beat when asked, as the demo runs it.

    Returns the process with .log and .media_root; stop it with stop_celery_worker.
    """
    db = settings.DATABASES["default"]
    if "postgresql" not in db["ENGINE"]:
        pytest.fail("the worker tests need PostgreSQL (run `make test`)")
    url = f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "RICHHF_VAR_DIR": str(var_dir),
        "DJANGO_MEDIA_ROOT": str(media_root),
        **(extra_env or {}),
    }
    log = ARTIFACTS / f"celery-{name}-{os.getpid()}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    handle = log.open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "richhf_site",
            "worker",
            *(["--beat"] if beat else []),
            "-l",
            "INFO",
            "-c",
            str(concurrency),
            "-Q",
            ",".join(queues),
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"{name}-{os.getpid()}@%h",
        ],
        cwd=ROOT,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.time() + 90
    while "ready." not in log.read_text():
        if proc.poll() is not None:
            pytest.fail(f"celery worker {name} exited with {proc.returncode}; see {log}")
        if time.time() > deadline:
            pytest.fail(f"celery worker {name} did not become ready in 90 s; see {log}")
        time.sleep(0.3)
    proc.log = log  # type: ignore[attr-defined]
    proc.media_root = media_root  # type: ignore[attr-defined]
    proc.log_handle = handle  # type: ignore[attr-defined]
    return proc


def stop_celery_worker(proc, sig: int = signal.SIGTERM) -> None:
    """Stops the worker's whole process group with ``sig`` (SIGKILL: a crash mid-task)."""
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    if not proc.log_handle.closed:
        proc.log_handle.close()


@pytest.fixture(scope="session")
def celery_worker_proc(django_db_setup, redis_broker_url, tmp_path_factory):
    """A real worker on this run's default queue, pointed at the test database.

    Tests that use it must use `transactional_db` (or live_server) so their rows are committed
    and visible to the worker's own connections; files go to celery_worker_proc.media_root.
    """
    var_dir = tmp_path_factory.mktemp("worker-var")
    proc = start_celery_worker(
        name="worker", queues=[settings.CELERY_TASK_DEFAULT_QUEUE], var_dir=var_dir, media_root=var_dir / "media"
    )
    yield proc
    stop_celery_worker(proc)


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2, what: str = "condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class _RequestCounter:
    """WSGI wrapper that counts the live server's requests in flight."""

    def __init__(self, app) -> None:
        self.app = app
        self.active = 0
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            self.active += 1
        try:
            # The body is produced inside the call (Django's handler returns a finished
            # response), so the request's database work is over when this returns.
            return self.app(environ, start_response)
        finally:
            with self.lock:
                self.active -= 1


@pytest.fixture(autouse=True)
def _live_server_quiet_before_flush(request):
    """A browser test's last requests (a keepalive draft save on pagehide, a heartbeat) may
    still be running on the live server when the test ends; the flush that follows then
    deadlocks with them in PostgreSQL and leaves the rows to the next test. This fixture is
    torn down after the page and before the database, and waits for the server to go quiet."""
    if "live_server" not in request.fixturenames:
        yield
        return
    server = request.getfixturevalue("live_server")
    httpd = server.thread.httpd
    counter = httpd.get_app()
    if not isinstance(counter, _RequestCounter):
        counter = _RequestCounter(counter)
        httpd.set_app(counter)
    yield
    time.sleep(0.2)  # a request the closing page sent may still be on its way
    deadline = time.monotonic() + 10
    while counter.active and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("Debian's chromium is not installed (make test installs it)")
    return path


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args, chromium_path):
    return {**browser_type_launch_args, "executable_path": chromium_path, "args": CHROMIUM_ARGS}


DOCS_SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


def docs_screenshot(path: Path, name: str) -> None:
    """Copies a test's screenshot to docs/screenshots/<name>.png, the README's tour, only when
    RICHHF_DOCS_SCREENSHOTS=1: a plain test run never rewrites tracked files."""
    if os.environ.get("RICHHF_DOCS_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_SCREENSHOTS / f"{name}.png")


@pytest.fixture
def shot():
    """Saves a screenshot under build/test-artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str, **kwargs) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), **kwargs)
        return path

    return take


def submitted_annotation(item, user, scores=(3, 3, 3, 3), words=(), implausible=(), misaligned=(), time_ms=10_000):
    """A submitted answer written straight to the database (no lease dance)."""
    from django.utils import timezone

    from annotation.models import Annotation, Assignment, AssignmentState
    from modeling.protocol import SCORE_NAMES

    now = timezone.now()
    assignment = Assignment.objects.create(
        item=item, rater=user, state=AssignmentState.SUBMITTED, leased_at=now, expires_at=now, finished_at=now
    )
    return Annotation.objects.create(
        assignment=assignment,
        item=item,
        rater=user,
        implausible_points=[list(p) for p in implausible],
        misaligned_points=[list(p) for p in misaligned],
        misaligned_words=sorted(words),
        time_spent_ms=time_ms,
        **dict(zip(SCORE_NAMES, scores, strict=True)),
    )


@pytest.fixture
def leased(raters, make_item):
    """(the first rater's API client, the id of the lease it just took on a fresh item)."""
    from django.urls import reverse

    campaign, (r1, _, _) = raters
    make_item(campaign, prompt="a yellow cat")
    client = api_client_for(r1)
    response = client.post(reverse("api:next-item", args=[campaign.pk]), {}, format="json")
    return client, response.json()["assignment"]["id"]
