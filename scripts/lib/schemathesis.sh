#!/usr/bin/env bash
# Holds local-api to its OpenAPI document: schemathesis (pinned in tests/requirements.txt, in
# .venv) runs every check and every phase, stateful included, against local-api serving
# openapi.json, with the fake Twilio as Twilio and the moto server named by AWS_ENDPOINT_URL
# as DynamoDB and KMS (scripts/test starts it and exports it).
#
# It starts the fake Twilio and `local-api --bootstrap` on free loopback ports (on a table and a
# KMS alias of this run's own), creates an API key for each of two organizations with admin,
# runs schemathesis (configuration: tests/schemathesis.toml; hooks: tests/schemathesis_hooks.py),
# and stops everything it started when it exits.
#
# Bounded: at most ST_MAX_EXAMPLES test cases per operation and phase (default 25) and
# ST_MAX_TIME seconds in all (default 180; schemathesis fills that time with more fuzzing and
# stateful scenarios). ST_SEED (default 14) makes the generated data repeatable. Output goes to
# target/schemathesis.log, which ends with one line `schemathesis: N passed, N failed` (test
# cases); the exit status is schemathesis's (non-zero on any failure). Extra arguments go to
# `st run`.
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${AWS_ENDPOINT_URL:?AWS_ENDPOINT_URL must name a running moto server (scripts/test starts one)}"
export AWS_REGION=${AWS_REGION:-us-east-1} AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
unset AWS_PROFILE AWS_ENDPOINT_URL_DYNAMODB AWS_ENDPOINT_URL_KMS
MAX_EXAMPLES=${ST_MAX_EXAMPLES:-25}
MAX_TIME=${ST_MAX_TIME:-180}
LOG=target/schemathesis.log
mkdir -p target
rm -f "$LOG"

if [ ! -x .venv/bin/st ] || ! cmp -s tests/requirements.txt .venv/installed-requirements.txt; then
  source scripts/lib/moto.sh
  moto_install
fi
cargo build --locked --quiet -p tools -p integration-tests --bin local-api --bin admin --bin fake-twilio

source scripts/lib/local-stack.sh

fail() {
  echo "$1" | tee "$LOG" >&2
  echo "schemathesis: 0 passed, 1 failed" | tee -a "$LOG"
  exit 1
}

# The fake Twilio with its demo account and as many more as the creates may need, one per
# create (tests/schemathesis_hooks.py), each with enough numbers that every import can take
# ones not imported before; local-api on a table and key of this run's own.
export FAKE_TWILIO_EXTRA_ACCOUNTS=${FAKE_TWILIO_EXTRA_ACCOUNTS:-3000}
export FAKE_TWILIO_NUMBERS_PER_ACCOUNT=${FAKE_TWILIO_NUMBERS_PER_ACCOUNT:-60}
local_stack_start schemathesis 2>"$LOG" || fail "$(cat "$LOG")"
api=$LOCAL_API

# Two organizations with an API key each: requests go as org-a, and the object-level
# authorization check replays what org-a created as org-b (tests/schemathesis.toml).
workdir=target/schemathesis
rm -rf "$workdir"
mkdir -p "$workdir"
key_a=$(target/debug/admin api-key create --organization-id org-schemathesis-a --description schemathesis | tail -n 1)
key_b=$(target/debug/admin api-key create --organization-id org-schemathesis-b --description schemathesis | tail -n 1)
cat >"$workdir/auth.json" <<JSON
{"auth": [
  {"name": "org-a", "fixedHeaders": [{"name": "Authorization", "value": "Bearer $key_a"}]},
  {"name": "org-b", "fixedHeaders": [{"name": "Authorization", "value": "Bearer $key_b"}]}
]}
JSON

# st runs in a directory of its own: it keeps a crash cache (.schemathesis/) there, emptied
# above for every run so that runs repeat. One worker: with two, CPython 3.11's ast.parse
# (which hypothesis calls while describing strategies) is not thread-safe and now and then
# fails with "AST constructor recursion depth mismatch", an error of the tool, not the service.
started=$(date +%s)
set +e
(
  cd "$workdir"
  export PYTHONPATH=../../tests SCHEMATHESIS_HOOKS=schemathesis_hooks SCHEMATHESIS_WFC_AUTH=auth.json
  exec ../../.venv/bin/st --config-file ../../tests/schemathesis.toml run "http://$api/openapi.json" \
    --phases examples,coverage,fuzzing,stateful \
    --max-examples "$MAX_EXAMPLES" \
    --max-time "$MAX_TIME" \
    --workers 1 \
    --seed "${ST_SEED:-14}" \
    --generation-database none \
    --request-timeout 30 \
    --no-color \
    "$@"
) 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
set -e
elapsed=$(($(date +%s) - started))

# One plain closing line for scripts/test, from schemathesis's "Test cases:" summary
# ("N generated, N passed[, N skipped]" or "N generated, N found N unique failures[, ...]").
python3 - "$LOG" "$status" "$elapsed" <<'PY' | tee -a "$LOG"
import re, sys
path, status, elapsed = sys.argv[1], int(sys.argv[2]), sys.argv[3]
text = open(path, encoding="utf-8", errors="replace").read()
summary = re.findall(r"^\s*(\d+) generated, (.*)$", text, re.M)
passed = failed = 0
if summary:
    generated, rest = int(summary[-1][0]), summary[-1][1]
    found = re.search(r"(\d+) found", rest)
    failed = int(found.group(1)) if found else 0
    passed = generated - failed
if status != 0 and failed == 0:
    failed = 1
print(f"schemathesis exited {status} after {elapsed} s")
print(f"schemathesis: {passed} passed, {failed} failed")
PY
exit "$status"
