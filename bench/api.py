"""Throughput and latency of the rater API (next item + submit) on PostgreSQL.

Starts a real gunicorn server on a fresh bench database, then drives 1, 8 and 32 concurrent
simulated raters for a fixed time per level. Beside it, in the same run, the same server's
throughput on a trivial authenticated DRF endpoint (GET /api/me/) at the same concurrency:
the ratio is the figure to watch, since absolute numbers depend on the machine.

    .venv/bin/python bench/api.py [--duration 10] [--levels 1,8,32] [--items 3000]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "richhf_bench_api"
DB_URL = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def prepare(n_items: int, n_raters: int, var_dir: Path) -> tuple[int, list[str]]:
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", DB_NAME], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", DB_NAME], check=True)
    os.environ.setdefault(
        "DJANGO_SECRET_KEY", "bench-only-" + secrets.token_urlsafe(50)
    )  # off DEBUG a real key is required
    os.environ.update(DATABASE_URL=DB_URL, RICHHF_VAR_DIR=str(var_dir), DJANGO_SETTINGS_MODULE="richhf_site.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from annotation.models import Campaign
    from annotation.services import ItemInput, campaign_add_raters, item_create
    from richhf_site.roles import RATER, user_add_role

    call_command("migrate", verbosity=0)
    campaign = Campaign.objects.create(name="bench")
    import io

    from PIL import Image

    for i in range(n_items):
        buf = io.BytesIO()
        Image.new("RGB", (8, 8), (i % 256, (i // 256) % 256, (i // 65536) % 256)).save(buf, format="PNG")
        item_create(
            campaign=campaign,
            data=ItemInput(image_bytes=buf.getvalue(), filename=f"{i}.png", prompt=f"a red cube number {i} on a table"),
        )
    User = get_user_model()
    tokens = []
    for i in range(n_raters):
        user = User.objects.create_user(username=f"bench{i:02d}")
        user_add_role(user=user, role=RATER)
        tokens.append(Token.objects.create(user=user).key)
    campaign_add_raters(campaign=campaign, users=User.objects.filter(username__startswith="bench"))
    from django.db import connection, connections

    # Fresh bulk-loaded tables have no planner statistics until autovacuum gets to them; a
    # live server always has them. Without this the planner picks nested loops that scan
    # the rater's assignments once per item (57 ms instead of 2 ms for one count).
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    connections.close_all()
    return campaign.pk, tokens


SUBMISSION = {
    "implausible_points": [[0.25, 0.5], [0.3, 0.52]],
    "misaligned_points": [[0.7, 0.1]],
    "misaligned_words": [1],
    "scores": {"plausibility": 4, "alignment": 3, "aesthetics": 4, "overall": 4},
    "time_spent_ms": 15000,
}


def run_level(base: str, tokens: list[str], campaign_id: int, concurrency: int, duration: float, trivial: bool) -> dict:
    latencies: dict[str, list[float]] = {"next": [], "submit": [], "me": []}
    errors = {"n": 0}
    lock = threading.Lock()
    stop_at = time.perf_counter() + duration
    cycles = {"n": 0}

    def worker(token: str) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        while time.perf_counter() < stop_at:
            if trivial:
                t0 = time.perf_counter()
                r = session.get(f"{base}/api/me/", timeout=60)
                with lock:
                    latencies["me"].append(time.perf_counter() - t0)
                    errors["n"] += r.status_code != 200
                    cycles["n"] += 1
                continue
            t0 = time.perf_counter()
            r = session.post(f"{base}/api/campaigns/{campaign_id}/next/", json={}, timeout=60)
            t1 = time.perf_counter()
            body = r.json()
            if r.status_code != 200 or body["assignment"] is None:
                with lock:
                    errors["n"] += 1
                time.sleep(0.01)
                continue
            s = session.post(f"{base}/api/assignments/{body['assignment']['id']}/submit/", json=SUBMISSION, timeout=60)
            t2 = time.perf_counter()
            with lock:
                latencies["next"].append(t1 - t0)
                latencies["submit"].append(t2 - t1)
                errors["n"] += s.status_code != 201
                cycles["n"] += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, tokens[:concurrency]))
    elapsed = time.perf_counter() - started
    requests_done = cycles["n"] * (1 if trivial else 2)
    out = {"rps": requests_done / elapsed, "cycles_per_s": cycles["n"] / elapsed, "errors": errors["n"]}
    for key, values in latencies.items():
        if values:
            out[f"{key}_p50_ms"] = 1000 * statistics.median(values)
            out[f"{key}_p99_ms"] = 1000 * percentile(values, 0.99)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per level and endpoint")
    parser.add_argument("--levels", default="1,8,32")
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--server-workers", type=int, default=2)
    parser.add_argument("--server-threads", type=int, default=8)
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    var_dir = ROOT / "build" / "bench-api"
    print(f"preparing {args.items} items and {max(levels)} raters in database {DB_NAME}...", flush=True)
    campaign_id, tokens = prepare(args.items, max(levels), var_dir)
    # Completed items enqueue aggregation on Redis, as in production (nothing consumes it here).
    broker = "redis://127.0.0.1:6379/14"
    subprocess.run(["redis-cli", "-u", broker, "flushdb"], check=True, capture_output=True)
    env = {
        **os.environ,
        "DATABASE_URL": DB_URL,
        "RICHHF_VAR_DIR": str(var_dir),
        "DATABASE_CONN_MAX_AGE": "60",
        "CELERY_BROKER_URL": broker,
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "richhf_site.wsgi:application",
            "--bind",
            f"127.0.0.1:{args.port}",
            "--workers",
            str(args.server_workers),
            "--threads",
            str(args.server_threads),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{args.port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                requests.get(f"{base}/healthz", timeout=5).raise_for_status()
                break
            except requests.RequestException:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        print(
            f"server: gunicorn {args.server_workers} workers x {args.server_threads} threads; {args.duration:.0f} s per cell\n"
        )
        header = f"{'raters':>6} | {'trivial req/s':>13} | {'annot req/s':>11} | {'ratio':>5} | {'annotations/s':>13} | {'next p50/p99 ms':>15} | {'submit p50/p99 ms':>17} | {'me p50/p99 ms':>13} | errors"
        print(header)
        print("-" * len(header))
        for level in levels:
            trivial = run_level(base, tokens, campaign_id, level, args.duration, trivial=True)
            real = run_level(base, tokens, campaign_id, level, args.duration, trivial=False)
            ratio = real["rps"] / trivial["rps"]
            print(
                f"{level:>6} | {trivial['rps']:>13.1f} | {real['rps']:>11.1f} | {ratio:>5.2f} | {real['cycles_per_s']:>13.1f} | "
                f"{real.get('next_p50_ms', 0):>6.1f}/{real.get('next_p99_ms', 0):<8.1f} | "
                f"{real.get('submit_p50_ms', 0):>7.1f}/{real.get('submit_p99_ms', 0):<9.1f} | "
                f"{trivial['me_p50_ms']:>5.1f}/{trivial['me_p99_ms']:<7.1f} | {trivial['errors'] + real['errors']}",
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
        subprocess.run(["redis-cli", "-u", broker, "flushdb"], capture_output=True)


if __name__ == "__main__":
    main()
