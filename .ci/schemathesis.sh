#!/usr/bin/env bash
# Schemathesis against a live `training-analytics serve`: every operation of /openapi.json, with
# bounded examples and a fixed seed; fails on any 5xx and on any response whose status, media
# type, headers or body the schema does not describe. About a minute on a 2-core machine.
#
# Uses REDIS_URL if set (under its own key prefix, so it writes nothing else there), else an
# embedded Valkey server in a temporary data directory. Run from an environment where
# `pip install -e '.[test]'` was done.
set -euo pipefail
cd "$(dirname "$0")/.."

examples=${SCHEMATHESIS_EXAMPLES:-25}
seed=${SCHEMATHESIS_SEED:-20251130}
workdir=$(mktemp -d)
export TRAINING_ANALYTICS_DATA_DIR="$workdir/data"
prefix="schemathesis-$$:"
port=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

key=$(training-analytics --prefix "$prefix" keys create --role admin --name schemathesis)
training-analytics --prefix "$prefix" serve --port "$port" --log-level warning \
  >"$workdir/serve.log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  rm -rf "$workdir"
}
trap cleanup EXIT
for _ in $(seq 300); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done

# The ids the schema's examples name exist, so operations on them reach past 404.
api="http://127.0.0.1:$port/api/v1"
auth="Authorization: Bearer $key"
curl -fsS -o /dev/null -H "$auth" -H 'Content-Type: application/json' -X POST "$api/courses" \
  -d '{"id": "sales-101", "title": {"en": "Selling 101"}, "category": "sales", "isPublished": true,
       "modules": [{"id": "intro", "title": {"en": "Intro"}}]}'
curl -fsS -o /dev/null -H "$auth" -H 'Content-Type: application/json' -X POST "$api/events" \
  -d '[{"kind": "enrollment", "userId": "ana", "courseId": "sales-101"},
       {"kind": "module_completion", "userId": "ana", "courseId": "sales-101", "moduleId": "intro"}]'
curl -fsS -o /dev/null -H "$auth" -H 'Content-Type: application/json' -X PUT "$api/progress/ana/sales-101" \
  -d '{"status": "in_progress", "overallScore": 70}'
curl -fsS -o /dev/null -H "$auth" -H 'Content-Type: application/json' -X POST "$api/certifications" \
  -d '{"id": "cert-1", "userId": "ana", "courseId": "sales-101", "issuedAt": "2025-03-01T17:00:00Z",
       "expiresAt": "2099-01-01T00:00:00Z"}'

status=0
# From the temporary directory: schemathesis keeps state in ./.schemathesis.
(cd "$workdir" && schemathesis run "http://127.0.0.1:$port/openapi.json" \
  --header "Authorization: Bearer $key" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing \
  --max-examples "$examples" \
  --seed "$seed" \
  --workers 1 \
  --request-timeout 30 \
  --suppress-health-check too_slow,filter_too_much \
  --generation-database none \
  --no-color) || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- serve log (last 50 lines)"
  tail -50 "$workdir/serve.log"
fi
exit "$status"
