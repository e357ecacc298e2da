#!/usr/bin/env bash
# Makes sure PostgreSQL and Redis answer on 127.0.0.1, starting them if they are down.
# With CI=true a service that cannot be started is a failure, never a skip.
set -uo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }

wait_until() {  # wait_until CHECK SECONDS
  for _ in $(seq 1 "$2"); do "$1" && return 0; sleep 1; done
  return 1
}

if ! pg_up; then
  echo "PostgreSQL is down; starting it"
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)
  if [ -n "$version" ]; then
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  fi
  wait_until pg_up 30 || { echo "ERROR: PostgreSQL does not answer on 127.0.0.1:5432" >&2; exit 1; }
fi

if ! redis_up; then
  echo "Redis is down; starting it"
  if [ -d /var/lib/redis ]; then
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no --dir /var/lib/redis || true
  else
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
  fi
  wait_until redis_up 15 || { echo "ERROR: Redis does not answer on 127.0.0.1:6379" >&2; exit 1; }
fi
echo "PostgreSQL and Redis are up."
