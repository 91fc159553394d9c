# Starts the fake Twilio and `local-api --bootstrap` on free loopback ports, on a table and KMS
# alias of the caller's own, against the moto server named by AWS_ENDPOINT_URL (scripts/test
# starts it). Source this file (it stops every process in `pids`, where it adds what it starts,
# when the sourcing script exits), then `local_stack_start NAME`: logs go to target/NAME-*.log,
# the table and alias are named NAME-<pid>-<time>, and LOCAL_API is the API's host:port.
# The fake's accounts follow FAKE_TWILIO_* (tests/src/bin/fake_twilio.rs). Returns 1 (with a
# message) when local-api does not start.

pids=()
local_stack_stop() {
  if [ ${#pids[@]} -gt 0 ]; then
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
}
trap local_stack_stop EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

local_stack_start() {
  local name=$1 twilio twilio_ie1 twilio_au1 api_pid
  twilio="127.0.0.1:$(free_port)" twilio_ie1="127.0.0.1:$(free_port)" twilio_au1="127.0.0.1:$(free_port)"
  target/debug/fake-twilio --listen "$twilio" --listen-ie1 "$twilio_ie1" --listen-au1 "$twilio_au1" \
    >"target/$name-fake-twilio.log" 2>&1 &
  pids+=("$!")
  local run_id="$name-$$-$(date +%s)"
  export TABLE_NAME="$run_id" KMS_KEY_ID="alias/$run_id"
  # TLS, so that a secure trunk (secureTrunking) can be made as well as a plain one.
  export PLATFORM_SIP_URI="sip:sip.voice.example.com;transport=tls"
  export TWILIO_API_BASE_URL="http://$twilio" TWILIO_TRUNKING_BASE_URL="http://$twilio"
  export TWILIO_API_BASE_URL_IE1="http://$twilio_ie1" TWILIO_TRUNKING_BASE_URL_IE1="http://$twilio_ie1"
  export TWILIO_API_BASE_URL_AU1="http://$twilio_au1" TWILIO_TRUNKING_BASE_URL_AU1="http://$twilio_au1"
  export TWILIO_ROUTES_BASE_URL="http://$twilio" TWILIO_ROUTES_BASE_URL_IE1="http://$twilio_ie1" TWILIO_ROUTES_BASE_URL_AU1="http://$twilio_au1"
  LOCAL_API="127.0.0.1:$(free_port)"
  target/debug/local-api --bootstrap --listen "$LOCAL_API" >"target/$name-local-api.log" 2>&1 &
  api_pid=$!
  pids+=("$api_pid")
  for _ in $(seq 1 300); do
    if python3 -c "import urllib.request; urllib.request.urlopen('http://$LOCAL_API/openapi.json')" 2>/dev/null; then
      return 0
    fi
    kill -0 "$api_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "local-api did not start; see target/$name-local-api.log" >&2
  return 1
}
