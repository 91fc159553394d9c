"""Every function as `sam local` runs it, and the README's Quickstart against `sam local start-api`.

Run by scripts/sam-local, which builds the functions with `sam build`, starts Docker, moto and
the fake Twilio, bootstraps the table, KMS key and queues, creates an API key and passes:
  SAM                the sam executable
  SAM_LOCAL_ARGS     a JSON list of the arguments every `sam local` command takes (template,
                     --env-vars, --invoke-image, --docker-network, --add-host, ...)
  SAM_LOCAL_API_KEY  an API key of organization org-demo (the events' organization)
  SAM_LOCAL_LOGS     a folder for each command's output
  SAM_LOCAL_MOTO     moto's URL from this machine, and TABLE_NAME the table: the deletion
                     queue's consumer continues only a delete the table marks as in progress,
                     so the test marks one as a DELETE that ran out of time would (boto3, from
                     moto's virtualenv, which runs this file)
Phase one invokes every function in the template with its events/ file (as functions/tests/
binaries.rs does under a Runtime API of its own) and checks each answer's status and shape; phase
two serves the API with its Lambda authorizer and runs the README's Quickstart curl steps (the
README's own text, not a copy) plus requests without and with a wrong key. Prints
`sam-local: N passed, M failed` last and exits 1 on a failure.
"""

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import readme_quickstart
from tally import check, close

ROOT = Path(__file__).resolve().parent.parent
SAM = os.environ["SAM"]
ARGS = json.loads(os.environ["SAM_LOCAL_ARGS"])
API_KEY = os.environ["SAM_LOCAL_API_KEY"]
LOGS = Path(os.environ["SAM_LOCAL_LOGS"])

# The ids the events/ files carry, replaced by the ones this run creates.
EVENT_PROVIDER_ID = "01936f5e-8f1c-7a3b-9d2e-4f5a6b7c8d9e"
EVENT_NUMBER_ID = "01936f60-1a2b-7c3d-8e4f-5a6b7c8d9e0f"
EVENT_API_KEY = "tpk_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"



def template_functions():
    """{binary: logical id} of every function in template.yaml."""
    text = (ROOT / "template.yaml").read_text()
    found = re.findall(r"^  (\w+):\n    Type: AWS::Serverless::Function\n(?:    .*\n|      .*\n)*?        Binary: ([\w-]+)$",
                       text, re.M)
    return {binary: logical for logical, binary in found}


FUNCTIONS = template_functions()
invoked = set()


def event(name, swaps=()):
    text = (ROOT / "events" / name).read_text()
    for old, new in swaps:
        text = text.replace(old, new)
    return text


def invoke(binary, event_text):
    """`sam local invoke` of the binary's function with the event; its answer, parsed."""
    invoked.add(binary)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        file.write(event_text)
    log = LOGS / f"invoke-{len(list(LOGS.iterdir())):02d}-{binary}.log"
    try:
        done = subprocess.run([SAM, "local", "invoke", FUNCTIONS[binary], "-e", file.name, *ARGS],
                              capture_output=True, text=True, timeout=300)
    finally:
        os.unlink(file.name)
    log.write_text(f"exit {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}")
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        return {"unparsed": done.stdout[-500:], "log": str(log)}


def status_and_body(response):
    try:
        return response.get("statusCode"), json.loads(response.get("body") or "null")
    except (AttributeError, json.JSONDecodeError):
        return None, None


def invoke_http(binary, name, swaps, status, shape):
    """An API function: its status, and `shape(body)` true."""
    response = invoke(binary, event(name, swaps))
    got, body = status_and_body(response)
    ok = got == status and body is not None and shape(body)
    check(f"sam local invoke {binary}: {status}", ok, json.dumps(response)[:400])
    return body


def phase_invoke():
    created = invoke_http("create-twilio-provider", "create-twilio-provider.json", (), 201,
                          lambda b: b.get("accountSid", "").startswith("AC") and "authToken" not in b)
    if not created:
        return
    provider_id = created["id"]
    with_id = [(EVENT_PROVIDER_ID, provider_id)]
    is_provider = lambda b: b.get("id") == provider_id
    for binary, shape in [
        ("get-twilio-provider", is_provider),
        ("get-provider", lambda b: is_provider(b) and b.get("providerType") == "twilio"),
        ("list-providers", lambda b: any(item.get("id") == provider_id for item in b.get("items", []))),
        ("update-twilio-provider", is_provider),
        ("replace-twilio-credentials", lambda b: is_provider(b) and b.get("credentialType") == "api_key"),
        ("rotate-twilio-auth-token", lambda b: is_provider(b) and b.get("credentialType") == "auth_token"),
        ("list-available-numbers", lambda b: isinstance(b.get("items"), list) and "truncated" in b),
        ("import-numbers", lambda b: b.get("successCount") == 1 and b.get("failedCount") == 0),
        ("verify-provider", lambda b: b.get("status") == "verified"),
        ("repair-provider", lambda b: "actions" in b and b.get("verification", {}).get("status") == "verified"),
        ("rotate-sip-credential", lambda b: b.get("providerId") == provider_id and b.get("previous")),
        ("finish-sip-credential-rotation", lambda b: "current" in b and b.get("previous") is None),
        ("list-provider-events", lambda b: any(e.get("action") == "create" for e in b.get("items", []))),
        ("list-events", lambda b: [e.get("action") for e in b.get("items", [])] == ["create"]),
    ]:
        invoke_http(binary, f"{binary}.json", with_id, 200, shape)
    numbers = invoke_http("list-phone-numbers", "list-phone-numbers.json", with_id, 200,
                          lambda b: len(b.get("items", [])) == 1)
    if numbers:
        number_id = numbers["items"][0]["id"]
        invoke_http("remove-phone-number", "remove-phone-number.json",
                    with_id + [(EVENT_NUMBER_ID, number_id)], 200, lambda b: b.get("restored") is True)

    credential = invoke("get-sip-credential", event("get-sip-credential.json", with_id))
    check("sam local invoke get-sip-credential: the call engine's credential",
          isinstance(credential.get("username"), str) and len(credential.get("password") or "") >= 12
          and str(credential.get("terminationUri", "")).startswith("sip:"),
          json.dumps({k: v for k, v in credential.items() if k != "password"})[:400])
    unknown = invoke("get-sip-credential", event("get-sip-credential.json",
                                                 [(EVENT_PROVIDER_ID, "01936f5e-0000-7000-8000-000000000000")]))
    check("sam local invoke get-sip-credential: an unknown provider is ProviderNotFound",
          unknown.get("errorType") == "ProviderNotFound", json.dumps(unknown)[:400])

    planned = invoke("plan-jobs", event("plan-jobs.json"))
    check("sam local invoke plan-jobs: plans the provider", planned == {"job": "reverify", "planned": 1},
          json.dumps(planned)[:400])
    worked = invoke("run-jobs", event("run-jobs.json", with_id))
    check("sam local invoke run-jobs: no failures", worked == {"batchItemFailures": []}, json.dumps(worked)[:400])

    allowed = invoke("authorizer", event("authorizer.json", [(EVENT_API_KEY, API_KEY)]))
    check("sam local invoke authorizer: a key is authorized for its organization",
          allowed == {"isAuthorized": True, "context": {"organizationId": "org-demo", "apiKeyId": API_KEY.split("_")[1]}},
          json.dumps(allowed)[:400])
    denied = invoke("authorizer", event("authorizer.json"))
    check("sam local invoke authorizer: an unknown key is denied", denied.get("isAuthorized") is False,
          json.dumps(denied)[:400])

    mark_deleting(provider_id)
    continued = invoke("continue-deletions", event("continue-deletions.json", with_id))
    check("sam local invoke continue-deletions: deletes the provider", continued == {"batchItemFailures": []},
          json.dumps(continued)[:400])
    invoke_http("get-provider", "get-provider.json", with_id, 404, lambda b: b.get("status") == 404)

    again = invoke_http("create-twilio-provider", "create-twilio-provider.json", (), 201, lambda b: "id" in b)
    if again:
        response = invoke("delete-provider", event("delete-provider.json", [(EVENT_PROVIDER_ID, again["id"])]))
        check("sam local invoke delete-provider: 204", response.get("statusCode") == 204, json.dumps(response)[:400])
    missing = sorted(set(FUNCTIONS) - invoked)
    check(f"every function in template.yaml was invoked ({len(FUNCTIONS)})", not missing and len(FUNCTIONS) >= 14,
          str(missing))


def mark_deleting(provider_id):
    """The provider marked as being deleted, as a DELETE that ran out of time leaves it."""
    import boto3
    dynamo = boto3.client("dynamodb", endpoint_url=os.environ["SAM_LOCAL_MOTO"], region_name="us-east-1")
    dynamo.update_item(
        TableName=os.environ["TABLE_NAME"],
        Key={"pk": {"S": "ORG#org-demo"}, "sk": {"S": f"PROVIDER#{provider_id}"}},
        UpdateExpression="SET deletionStartedAt = :now, version = version + :one",
        ExpressionAttributeValues={":now": {"S": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                                   ":one": {"N": "1"}})


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url, method="GET", headers=None):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method, headers=headers or {}),
                                    timeout=120) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def phase_api():
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(LOGS / "start-api.log", "w")
    server = subprocess.Popen([SAM, "local", "start-api", "--port", str(port), "--host", "127.0.0.1",
                               "--warm-containers", "LAZY", *ARGS], stdout=log, stderr=subprocess.STDOUT)
    try:
        up = False
        for _ in range(600):
            if server.poll() is not None:
                break
            try:
                up = request(f"{base}/api/v1/providers")[0] in (401, 403)
            except OSError:
                pass
            if up:
                break
            time.sleep(0.5)
        if not check("sam local start-api serves the API", up, f"see {LOGS / 'start-api.log'}"):
            return
        status, body = request(f"{base}/api/v1/providers")
        check("start-api: a request without a key is refused (401)", status == 401, f"{status} {body[:200]!r}")
        status, body = request(f"{base}/api/v1/providers", headers={"Authorization": f"Bearer {EVENT_API_KEY}"})
        check("start-api: a request with an unknown key is refused (403)", status == 403, f"{status} {body[:200]!r}")

        commands = readme_quickstart.steps()
        check("the README's Quickstart has its curl steps", len(commands) >= 5, str(commands))
        provider_id = ""
        for command, lang, expected in commands:
            stdout, stderr = readme_quickstart.run_step(command, base, API_KEY, provider_id)
            provider_id = readme_quickstart.created_id(command, stdout, provider_id)
            check(f"start-api: README {command[:70]}",
                  readme_quickstart.answer_ok(lang, expected, stdout) and API_KEY not in stdout,
                  f"expected {expected!r}, got {stdout[:300]!r} {stderr[:200]!r}")
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def main():
    LOGS.mkdir(parents=True, exist_ok=True)
    phase_invoke()
    phase_api()
    return close("sam-local")


if __name__ == "__main__":
    sys.exit(main())
