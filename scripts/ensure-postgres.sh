#!/usr/bin/env bash
# Makes sure the local PostgreSQL answers on 127.0.0.1:5432 (starting the
# Debian cluster if it is installed but stopped). Used by `make demo`,
# `make test` and CI.
set -euo pipefail
url="${TEST_DATABASE_URL:-${VIGIL_DATABASE_URL:-postgres://root@127.0.0.1:5432/postgres}}"
ready() { pg_isready -q -d "$url" 2>/dev/null || pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if ready; then exit 0; fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  for v in $(ls /etc/postgresql); do
    pg_ctlcluster --skip-systemctl-redirect "$v" main start >/dev/null 2>&1 || true
  done
  for _ in $(seq 1 30); do ready && exit 0; sleep 1; done
fi
cat >&2 <<MSG
PostgreSQL is not reachable at $url.
Start it (on Debian: pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start)
or point TEST_DATABASE_URL / VIGIL_DATABASE_URL at a server where this user may create databases and roles.
MSG
exit 1
