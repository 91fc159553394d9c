# Helpers to install and run moto server (DynamoDB, KMS and SQS) on loopback, through
# tests/moto_server.py, which serves DynamoDB requests one at a time (atomic, as in DynamoDB).
# Source this file; moto_start sets MOTO_URL and stops moto when the calling shell exits. It
# listens on MOTO_HOST (default 127.0.0.1) and MOTO_PORT (default: a free port).

moto_install() {
  # Reinstall when the pinned requirements changed since the last install.
  if [ ! -x .venv/bin/moto_server ] || ! cmp -s tests/requirements.txt .venv/installed-requirements.txt; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
    cp tests/requirements.txt .venv/installed-requirements.txt
  fi
}

moto_start() {
  local host=${MOTO_HOST:-127.0.0.1} port
  port=${MOTO_PORT:-$(python3 -c "import socket; s=socket.socket(); s.bind(('$host', 0)); print(s.getsockname()[1])")}
  mkdir -p target
  .venv/bin/python tests/moto_server.py "$host" "$port" >target/moto.log 2>&1 &
  MOTO_PID=$!
  trap 'kill "$MOTO_PID" 2>/dev/null || true' EXIT
  MOTO_URL="http://$host:$port"
  for _ in $(seq 1 100); do
    if python3 -c "import urllib.request; urllib.request.urlopen('$MOTO_URL/moto-api/')" 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "$MOTO_PID" 2>/dev/null; then
      echo "moto server exited; see target/moto.log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "moto server did not answer on $MOTO_URL" >&2
  return 1
}
