#!/usr/bin/env bash
# The whole suite against the real PostgreSQL and Redis of this machine, with real Celery
# workers and headless Chromium. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/richhf}"
export CELERY_BROKER_URL="${TEST_CELERY_BROKER_URL:-redis://127.0.0.1:6379/15}"
export RICHHF_DEFAULT_QUEUE="${RICHHF_DEFAULT_QUEUE:-test-$$}"
export RICHHF_TRAINING_QUEUE="${RICHHF_TRAINING_QUEUE:-test-training-$$}"
export RICHHF_VAR_DIR="${RICHHF_VAR_DIR:-$PWD/build/test-var}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
export PYTHONHASHSEED=0
mkdir -p build/test-artifacts
# Each pytest run gets test_richhf_<pid> (tests/conftest.py); drop those of runs that died.
for db in $(psql -h 127.0.0.1 -U postgres -Atc "SELECT datname FROM pg_database WHERE datname ~ '^test_richhf_[0-9]+$'" 2>/dev/null); do
  pid="${db##*_}"
  kill -0 "$pid" 2>/dev/null || dropdb -h 127.0.0.1 -U postgres --if-exists "$db" || true
done
# Settings off DEBUG refuse a weak key; the suite (and the workers and servers it starts) get a
# throwaway one unless the caller sets their own.
export DJANGO_SECRET_KEY="${DJANGO_SECRET_KEY:-test-only-$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')}"
.venv/bin/python manage.py check --fail-level WARNING
# The history check needs DATABASE_URL's own database, which test runs never create (they use
# test_richhf_<pid>); models against migration files is what matters here.
.venv/bin/python -W "ignore:Got an error checking a consistent migration history:RuntimeWarning" \
  manage.py makemigrations --check --dry-run >/dev/null || {
  echo "ERROR: models and migrations disagree (run manage.py makemigrations)" >&2; exit 1; }
exec .venv/bin/python -m pytest "$@"
