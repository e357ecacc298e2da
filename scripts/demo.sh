#!/usr/bin/env bash
# `make demo`: migrate an embedded SQLite database, seed the demo, then run the web server,
# a Celery worker and Celery beat on kombu's filesystem broker (no server needed).
# DATABASE_URL / CELERY_BROKER_URL switch to PostgreSQL / Redis. Ctrl+C stops everything.
# DEMO_PORT (default 8000) and DEMO_HOST (default 127.0.0.1) choose where it listens:
#   DEMO_PORT=8001 make demo
set -euo pipefail
cd "$(dirname "$0")/.."
export DJANGO_DEBUG="${DJANGO_DEBUG:-1}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PORT="${DEMO_PORT:-8000}"
HOST="${DEMO_HOST:-127.0.0.1}"
PY=.venv/bin/python
mkdir -p var/log

say() { echo "==> $*"; }

say "Creating or updating the demo database (migrations)"
$PY manage.py migrate --noinput -v 0
say "Seeding the demo campaign, users and answers"
$PY manage.py seed_demo

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "Stopping the demo..."
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

say "Starting a Celery worker, Celery beat and the web server on http://$HOST:$PORT/ (logs in var/log/)"
$PY -m celery -A richhf_site worker -l INFO -c 1 -Q default,training >var/log/worker.log 2>&1 &
pids+=($!)
$PY -m celery -A richhf_site beat -l INFO >var/log/beat.log 2>&1 &
pids+=($!)
$PY manage.py runserver "$HOST:$PORT" --noreload >var/log/web.log 2>&1 &
pids+=($!)

say "Waiting for the web server to answer"
ready=0
for _ in $(seq 1 60); do
  if $PY - "$HOST" "$PORT" <<'PYEOF' 2>/dev/null; then ready=1; break; fi
import sys, urllib.request
urllib.request.urlopen(f"http://{sys.argv[1]}:{sys.argv[2]}/healthz", timeout=2)
PYEOF
  sleep 1
done
if [ "$ready" != 1 ]; then
  echo "The web server did not answer within 60 s; see var/log/web.log (is port $PORT taken? try DEMO_PORT=8001 make demo)." >&2
fi

cat <<MSG

  RichHF Studio demo is running at  http://$HOST:$PORT/
  API docs: http://$HOST:$PORT/api/docs/    Admin: http://$HOST:$PORT/admin/
  Admin pages (campaigns, uploads, imports, exports): http://$HOST:$PORT/manage/
  Logs: var/log/web.log, var/log/worker.log, var/log/beat.log
  Another port: DEMO_PORT=8001 make demo
  Press Ctrl+C to stop.
MSG
wait -n "${pids[@]}"
echo "A demo process exited; see var/log/." >&2
exit 1
