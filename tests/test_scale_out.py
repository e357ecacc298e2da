"""Scale-out without a shared disk: every process gets its own empty folders and shares only
PostgreSQL, Redis and an S3 bucket (moto's server on a free port). A small campaign goes all
the way through: import (its own process), leases and answers through two gunicorns taken in
turn, aggregates and an export with images on a default-queue worker, a retrain and its
predictions on a training-queue worker, and the dashboard recompute. Then every file is in the
bucket, no process kept shared data in its folders, and the export's checksum verifies."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import requests
from django.conf import settings
from django.db import connection
from PIL import Image

from tests.aggregation.learning.conftest import tiny_learning
from tests.conftest import ARTIFACTS, ROOT, start_celery_worker, stop_celery_worker, valid_submission, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

BUCKET = "richhf-scale-out"
N_TRAIN, N_DEV, ANSWERED_TRAIN = 8, 4, 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def s3_env() -> Iterator[dict[str, str]]:
    """An S3-compatible server with one empty bucket, and the environment that points at it."""
    port = _free_port()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "RICHHF_STORAGE": "s3",
        "AWS_STORAGE_BUCKET_NAME": BUCKET,
        "AWS_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_S3_REGION_NAME": "us-east-1",
        "AWS_S3_ADDRESSING_STYLE": "path",
        "AWS_ACCESS_KEY_ID": "scale-out-test",
        "AWS_SECRET_ACCESS_KEY": "scale-out-test",
        # Queues of this test alone: a session worker of another test (filesystem storage)
        # must never take these tasks.
        "RICHHF_DEFAULT_QUEUE": f"{settings.CELERY_TASK_DEFAULT_QUEUE}-s3",
        "RICHHF_TRAINING_QUEUE": f"{settings.RICHHF_TRAINING_QUEUE}-s3",
        "OMP_NUM_THREADS": "1",
    }
    _s3(env).create_bucket(Bucket=BUCKET)
    try:
        yield env
    finally:
        server.stop()


def _s3(env: dict[str, str]) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=env["AWS_S3_ENDPOINT_URL"],
        region_name=env["AWS_S3_REGION_NAME"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def _bucket_keys(env: dict[str, str]) -> set[str]:
    pages = _s3(env).get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return {obj["Key"] for page in pages for obj in page.get("Contents", [])}


class Folders:
    """One process's own local folders: var, media, learning and its temp directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.var, self.media, self.learning, self.tmp = (root / n for n in ("var", "media", "learning", "tmp"))
        for d in (self.var, self.media, self.learning, self.tmp):
            d.mkdir(parents=True)

    def env(self) -> dict[str, str]:
        return {
            "RICHHF_VAR_DIR": str(self.var),
            "DJANGO_MEDIA_ROOT": str(self.media),
            "RICHHF_LEARNING_DIR": str(self.learning),
            "TMPDIR": str(self.tmp),
        }

    def files(self) -> list[str]:
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())


def _database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _start_gunicorn(name: str, folders: Folders, s3: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": _database_url(), **s3, **folders.env()}
    log = (ARTIFACTS / f"gunicorn-{name}-{os.getpid()}.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "richhf_site.wsgi",
            "-w",
            "1",
            "-b",
            f"127.0.0.1:{port}",
            "--timeout",
            "120",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_for(lambda: _accepts(port), timeout=60, what=f"gunicorn {name} to listen")
    return proc, f"http://127.0.0.1:{port}"


def _write_import_folder(folder: Path) -> None:
    from modeling.data.synthetic import generate_example

    folder.mkdir()
    rng = np.random.default_rng(7)
    rows = []
    for i in range(N_TRAIN + N_DEV):
        image, truth, _ = generate_example(rng, image_size=64)
        Image.fromarray(image).save(folder / f"s{i}.png", format="PNG")
        dev = i >= N_TRAIN
        rows.append(
            {
                "image": f"s{i}.png",
                "prompt": truth.prompt,
                "split": "dev" if dev else "train",
                "priority": 10 if dev else 0,
            }
        )
    (folder / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_a_campaign_runs_end_to_end_on_object_storage_with_no_shared_folder(s3_env, make_user, tmp_path):
    from aggregation.exports.models import ExportJob
    from aggregation.learning.models import ItemPrediction, ModelVersion
    from aggregation.models import ItemAggregate
    from annotation.models import Campaign, Item
    from annotation.services import campaign_add_raters
    from richhf_site.auth import token_create

    folders = {n: Folders(tmp_path / n) for n in ("import", "web-a", "web-b", "worker", "trainer")}
    procs: list[subprocess.Popen] = []
    workers: list[subprocess.Popen] = []
    try:
        # Import: its own process, its own empty folders; the images go to the bucket.
        source = tmp_path / "source"
        _write_import_folder(source)
        subprocess.run(
            [sys.executable, "manage.py", "import_items", str(source), "--campaign", "scale", "--no-progress"],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": _database_url(), **s3_env, **folders["import"].env()},
            check=True,
            capture_output=True,
            timeout=120,
        )
        campaign = Campaign.objects.get(name="scale")
        items = list(Item.objects.filter(campaign=campaign).order_by("id"))
        assert len(items) == N_TRAIN + N_DEV

        for name, queue in (("worker", s3_env["RICHHF_DEFAULT_QUEUE"]), ("trainer", s3_env["RICHHF_TRAINING_QUEUE"])):
            workers.append(
                start_celery_worker(
                    name=f"scale-out-{name}",
                    queues=[queue],
                    var_dir=folders[name].var,
                    media_root=folders[name].media,
                    extra_env={**s3_env, **folders[name].env()},
                    concurrency=1,
                )
            )
        web = []
        for name in ("web-a", "web-b"):
            proc, base = _start_gunicorn(name, folders[name], s3_env)
            procs.append(proc)
            web.append(base)

        # Leases and answers: three raters, each request to the other web process in turn.
        # The dev items (priority 10) come first, then three train items: 7 complete items.
        raters = [make_user(f"scale-rater{i}", "rater") for i in range(3)]
        campaign_add_raters(campaign=campaign, users=raters)
        turn = 0
        for rater in raters:
            headers = {"Authorization": f"Token {token_create(user=rater).key}"}
            for _ in range(N_DEV + ANSWERED_TRAIN):
                base = web[turn % 2]
                turn += 1
                lease = requests.post(f"{base}/api/campaigns/{campaign.pk}/next/", headers=headers, timeout=60)
                assert lease.status_code == 200, lease.text
                assignment = lease.json()["assignment"]
                image = requests.get(
                    f"{web[turn % 2]}/api/items/{assignment['item']['id']}/image/", headers=headers, timeout=60
                )
                assert image.status_code == 200 and image.content.startswith(b"\x89PNG"), image.text[:200]
                submit = requests.post(
                    f"{web[turn % 2]}/api/assignments/{assignment['id']}/submit/",
                    headers=headers,
                    json=valid_submission(),
                    timeout=60,
                )
                assert submit.status_code in (200, 201), submit.text

        # Aggregates: computed by the default-queue worker from the answers.
        answered = N_DEV + ANSWERED_TRAIN
        wait_for(
            lambda: ItemAggregate.objects.filter(item__campaign=campaign).count() == answered,
            timeout=180,
            interval=0.5,
            what=f"{answered} aggregates; see {workers[0].log}",
        )

        # An export with image bytes, run by the worker and downloaded through the other web.
        admin = make_user("scale-admin", "admin", "lead")
        admin_headers = {"Authorization": f"Token {token_create(user=admin).key}"}
        created = requests.post(
            f"{web[0]}/api/campaigns/{campaign.pk}/exports/",
            headers=admin_headers,
            json={"format": "parquet", "include_image_bytes": True},
            timeout=60,
        )
        assert created.status_code == 202, created.text
        job_id = created.json()["id"]
        job = wait_for(
            lambda: ExportJob.objects.filter(pk=job_id, status__in=["succeeded", "failed"]).first(),
            timeout=180,
            interval=0.5,
            what=f"export {job_id}; see {workers[0].log}",
        )
        assert job.status == "succeeded", job.error
        stored = _s3(s3_env).get_object(Bucket=BUCKET, Key=job.archive.name)["Body"].read()
        assert hashlib.sha256(stored).hexdigest() == job.sha256
        downloaded = requests.get(f"{web[1]}/api/exports/{job_id}/download/", headers=admin_headers, timeout=60)
        assert downloaded.status_code == 200, downloaded.text[:200]
        assert hashlib.sha256(downloaded.content).hexdigest() == job.sha256
        with zipfile.ZipFile(io.BytesIO(stored)) as zf:
            manifest = json.loads(zf.read("manifest-parquet.json"))
            assert manifest["files"], manifest
            for entry in manifest["files"]:
                assert hashlib.sha256(zf.read(entry["name"])).hexdigest() == entry["sha256"], entry["name"]
            table = pq.read_table(io.BytesIO(zf.read(manifest["files"][0]["name"])))
        images = [b for b in table.column("image").to_pylist() if b]
        assert len(images) == table.num_rows > 0 and all(b.startswith(b"\x89PNG") for b in images)

        # A retrain (tiny config) on the training worker, then its predictions.
        tiny_learning(campaign)
        retrain = requests.post(
            f"{web[1]}/api/learning/campaigns/{campaign.pk}/retrain/", headers=admin_headers, timeout=60
        )
        assert retrain.status_code == 202, retrain.text
        version_id = retrain.json()["version"]["id"]
        version = wait_for(
            lambda: (
                ModelVersion.objects.filter(pk=version_id).filter(status__in=["done", "failed"], progress=1.0).first()
                or ModelVersion.objects.filter(pk=version_id, status="failed").first()
            ),
            timeout=420,
            interval=1.0,
            what=f"version {version_id}; see {workers[1].log}",
        )
        assert version.status == "done", version.error
        assert version.is_active, "the first version is activated by the rule"
        predictions = list(ItemPrediction.objects.filter(version=version))
        assert len(predictions) == N_TRAIN - ANSWERED_TRAIN, version.error

        # The dashboard: a recompute requested through one web process, read through the other.
        refresh = requests.post(
            f"{web[0]}/api/dashboard/campaigns/{campaign.pk}/refresh/", headers=admin_headers, timeout=60
        )
        assert refresh.status_code == 202, refresh.text

        def stats() -> dict | None:
            got = requests.get(
                f"{web[1]}/api/dashboard/campaigns/{campaign.pk}/stats/", headers=admin_headers, timeout=60
            )
            if got.status_code == 404:  # "no statistics computed yet"
                return None
            assert got.status_code == 200, got.text
            return got.json()["stats"]

        payload = wait_for(stats, timeout=120, interval=0.5, what=f"dashboard stats; see {workers[0].log}")
        assert payload

        # Every file lives in the bucket.
        keys = _bucket_keys(s3_env)
        expected = {item.image.name for item in Item.objects.filter(campaign=campaign)}
        for aggregate in ItemAggregate.objects.filter(item__campaign=campaign):
            expected |= {aggregate.implausibility_map.name, aggregate.misalignment_map.name}
        for p in predictions:
            expected |= {p.implausibility_map.name, p.misalignment_map.name}
        expected.add(job.archive.name)
        version.refresh_from_db()
        expected |= {f"{version.checkpoint_prefix}/{name}" for name in version.config["checkpoint_files"]}
        assert all(expected), "every row names its file"
        assert expected <= keys, sorted(expected - keys)
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
        for worker in workers:
            stop_celery_worker(worker)

    # No process kept shared data in its own folders: nothing under media, no export or
    # training scratch left in the temp or learning folders. The one thing allowed is the
    # per-process cache of checkpoints downloaded from the bucket (learning/cache/).
    for name, f in folders.items():
        left = [path for path in f.files() if not path.startswith("learning/cache/")]
        assert left == [], f"{name} kept {left}"
    assert folders["trainer"].files(), "the trainer's checkpoint cache came from the bucket"
