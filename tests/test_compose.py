"""docker-compose.yml describes the full stack and passes Debian's docker-compose validation."""

import os
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import ROOT

# The compose file has no default secret key: validation, like `docker-compose up`, needs one.
SECRET = "compose-test-" + "k9Xq2Lm7" * 6
ENV_WITH_KEY = {**os.environ, "DJANGO_SECRET_KEY": SECRET}
ENV_WITHOUT_KEY = {k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"}


@pytest.fixture(scope="module")
def resolved() -> dict:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail("docker-compose is not installed (make test installs it)")
    result = subprocess.run(
        [exe, "-f", "docker-compose.yml", "config"],
        cwd=ROOT,
        env=ENV_WITH_KEY,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_has_the_five_services_with_healthchecks(resolved):
    services = resolved["services"]
    assert set(services) == {"web", "worker", "trainer", "beat", "postgres", "redis"}
    for name in ("web", "worker", "postgres", "redis"):
        assert "healthcheck" in services[name], name
    command = services["worker"]["command"]
    assert "worker" in (" ".join(command) if isinstance(command, list) else command)


def test_web_worker_and_beat_share_one_environment(resolved):
    services = resolved["services"]
    envs = [services[name]["environment"] for name in ("web", "worker", "trainer", "beat")]
    assert envs[0] == envs[1] == envs[2] == envs[3]
    assert envs[0]["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in envs[0]["DATABASE_URL"]
    assert envs[0]["CELERY_BROKER_URL"].startswith("redis://redis:6379")
    assert "-Q training" in services["trainer"]["command"] and "-Q default" in services["worker"]["command"]
    for name in ("web", "worker", "trainer", "beat"):
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_validation_rejects_a_broken_file(tmp_path):
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        (ROOT / "docker-compose.yml").read_text().replace("depends_on:\n    postgres:", "depends_on:\n    postgresql:")
    )
    result = subprocess.run(
        ["docker-compose", "-f", str(broken), "config", "-q"],
        env=ENV_WITH_KEY,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0


def test_the_secret_key_has_no_default(resolved, tmp_path):
    for name in ("web", "worker", "trainer", "beat"):
        assert resolved["services"][name]["environment"]["DJANGO_SECRET_KEY"] == SECRET
    # Run from an empty folder so no .env file supplies one.
    compose = tmp_path / "docker-compose.yml"
    compose.write_text((ROOT / "docker-compose.yml").read_text())
    result = subprocess.run(
        ["docker-compose", "-f", str(compose), "config", "-q"],
        cwd=tmp_path,
        env=ENV_WITHOUT_KEY,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "set DJANGO_SECRET_KEY" in result.stderr
    assert "change-me" not in (ROOT / "docker-compose.yml").read_text()
