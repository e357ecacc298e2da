"""Where one rater request's time goes: per-statement SQL time and, optionally, a profile.

Runs on the database bench/api.py leaves behind (run that first), as one of its raters, 30
warm-up and 100 timed cycles of next item -> submit -> the trivial endpoint (GET /api/me/).
Prints the median of each request and the ratio of the trivial endpoint to the average
annotation request, as bench/api.py counts it; then each statement's mean time per request.

    .venv/bin/python bench/api_profile.py --rater bench31              # in-process (Django's test client)
    .venv/bin/python bench/api_profile.py --rater bench30 --http       # through gunicorn, 1 worker
    .venv/bin/python bench/api_profile.py --rater bench29 --profile    # + cProfile of the cycles

Each run adds answers for its rater: use a different rater for each run.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from api import DB_URL, SUBMISSION  # noqa: E402  (bench/api.py: its database and its answer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rater", default="bench31", help="a rater bench/api.py created")
    parser.add_argument("--http", action="store_true", help="through a gunicorn server instead of in-process")
    parser.add_argument("--profile", action="store_true", help="cProfile the timed cycles (in-process only)")
    parser.add_argument("--cycles", type=int, default=100)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-" + secrets.token_urlsafe(50))
    os.environ.update(
        DATABASE_URL=DB_URL,
        RICHHF_VAR_DIR=str(ROOT / "build" / "bench-api"),
        DJANGO_SETTINGS_MODULE="richhf_site.settings",
        DATABASE_CONN_MAX_AGE="60",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/14",
    )
    import django

    django.setup()
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from annotation.models import Campaign

    campaign_id = Campaign.objects.get(name="bench").pk
    key = Token.objects.get(user__username=args.rater).key
    sql: dict[str, dict[str, float]] = {"next": {}, "submit": {}}
    current: dict[str, str | None] = {"kind": None}

    def timed_sql(execute, statement, params, many, context):
        t0 = time.perf_counter()
        try:
            return execute(statement, params, many, context)
        finally:
            kind = current["kind"]
            if kind:
                head = statement[:90]
                sql[kind][head] = sql[kind].get(head, 0.0) + time.perf_counter() - t0

    server = None
    if args.http:
        import requests

        port = 8799
        env = {**os.environ}
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "richhf_site.wsgi:application", "--bind", f"127.0.0.1:{port}"]
            + ["--workers", "1", "--threads", "8", "--log-level", "warning"],
            cwd=ROOT,
            env=env,
        )
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                requests.get(f"{base}/healthz", timeout=2).raise_for_status()
                break
            except requests.RequestException:
                time.sleep(0.3)
        session = requests.Session()
        session.headers["Authorization"] = f"Token {key}"

        def post(path, body):
            return session.post(base + path, json=body, timeout=60)

        def get(path):
            return session.get(base + path, timeout=60)
    else:
        from django.test import Client

        client = Client(HTTP_AUTHORIZATION=f"Token {key}", HTTP_HOST="127.0.0.1")

        def post(path, body):
            return client.post(path, body, content_type="application/json")

        def get(path):
            return client.get(path)

    times: dict[str, list[float]] = {"next": [], "submit": [], "me": []}

    def cycle() -> None:
        t0 = time.perf_counter()
        current["kind"] = "next"
        response = post(f"/api/campaigns/{campaign_id}/next/", {})
        t1 = time.perf_counter()
        current["kind"] = "submit"
        assignment = response.json()["assignment"]
        if assignment is None:
            raise SystemExit(f"{args.rater}: nothing left to lease; run bench/api.py again or pick another rater")
        submitted = post(f"/api/assignments/{assignment['id']}/submit/", SUBMISSION)
        t2 = time.perf_counter()
        current["kind"] = None
        if submitted.status_code != 201:
            raise SystemExit(f"submit failed: {submitted.status_code} {submitted.content[:200]!r}")
        get("/api/me/")
        t3 = time.perf_counter()
        times["next"].append(t1 - t0)
        times["submit"].append(t2 - t1)
        times["me"].append(t3 - t2)

    try:
        with connection.execute_wrapper(timed_sql):
            for _ in range(30):
                cycle()
            for values in (*times.values(), *sql.values()):
                values.clear()
            if args.profile and not args.http:
                import cProfile
                import pstats

                with cProfile.Profile() as prof:
                    for _ in range(args.cycles):
                        cycle()
                pstats.Stats(prof).sort_stats("cumulative").print_stats(r"annotation/|richhf_site/|serializers", 40)
            else:
                for _ in range(args.cycles):
                    cycle()
    finally:
        if server is not None:
            server.terminate()
            server.wait()
    med = {k: 1000 * statistics.median(v) for k, v in times.items()}
    ratio = med["me"] / ((med["next"] + med["submit"]) / 2)
    where = "gunicorn, 1 worker" if args.http else "in-process"
    print(
        f"{where}: next {med['next']:.1f} ms, submit {med['submit']:.1f} ms, trivial {med['me']:.1f} ms "
        f"(medians of {args.cycles}) | ratio {ratio:.2f} (annotation req/s over trivial req/s)"
    )
    if not args.http:  # the server's statements are not visible from here
        for kind, statements in sql.items():
            print(f"{kind}: SQL {1000 * sum(statements.values()) / args.cycles:.2f} ms per request")
            for head, total in sorted(statements.items(), key=lambda kv: -kv[1]):
                print(f"  {1000 * total / args.cycles:6.2f} ms  {head}")


if __name__ == "__main__":
    main()
