#!/usr/bin/env bash
# A Python client generated from openapi.json by openapi-python-client (pinned in
# tests/requirements.txt, in .venv), as a platform engineer would generate and use it, run
# through the walk-through against local-api on the moto server named by AWS_ENDPOINT_URL
# (scripts/test starts it) and the fake Twilio: tests/generated_client.py. Output goes to
# target/generated-client.log, which ends with `generated-client: N passed, N failed`.
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${AWS_ENDPOINT_URL:?AWS_ENDPOINT_URL must name a running moto server (scripts/test starts one)}"
export AWS_REGION=${AWS_REGION:-us-east-1} AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
LOG=target/generated-client.log
mkdir -p target
rm -f "$LOG"
cargo build --locked --quiet -p tools -p integration-tests --bin local-api --bin admin --bin fake-twilio

source scripts/lib/local-stack.sh
if ! local_stack_start generated-client 2>"$LOG"; then
  echo "generated-client: 0 passed, 1 failed" | tee -a "$LOG"
  exit 1
fi
key=$(target/debug/admin api-key create --organization-id org-generated-client --description generated-client | tail -n 1)
# The generator's post-hooks (ruff) come from the same virtualenv.
PATH="$PWD/.venv/bin:$PATH" .venv/bin/python tests/generated_client.py "http://$LOCAL_API" "$key" 2>&1 | tee "$LOG"
exit "${PIPESTATUS[0]}"
