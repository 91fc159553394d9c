"""The README's Quickstart, run from the README's own text against `scripts/run`'s stack.

`steps()` reads the Quickstart section: each `sh` block holding a `curl` command, with the
answer block right after it (`json`: the fields shown must be in the answer, "…" meaning any
value and a trailing "…" a prefix; `text`: the output itself). Run as a script, it starts
`scripts/run` on free ports, takes the API key it prints, runs every step in order with `B`, `K`
and `ID` set as the README says, and checks each answer. Ends with `quickstart: N passed, N
failed` (target/quickstart.log); tests/sam_local.py runs the same steps against `sam local`.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from tally import check, close

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def section():
    text = (ROOT / "README.md").read_text()
    start = text.index("## Quickstart")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else len(text)]


def setup_line():
    """The README's `B=…; K=…` line."""
    return next(body.strip() for lang, body in BLOCK.findall(section()) if lang == "sh" and body.startswith("B="))


def steps():
    """(command, answer language, answer) for each curl step, continuation lines joined."""
    blocks = BLOCK.findall(section())
    found = []
    for (lang, body), following in zip(blocks, blocks[1:] + [("", "")]):
        if lang == "sh" and body.lstrip().startswith("curl "):
            found.append((re.sub(r"\\\n\s*", "", body).strip(), following[0], following[1].strip()))
    return found


def matches(expected, actual):
    """Whether `actual` holds what `expected` shows: every field, "…" any value, "x…" a prefix."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and matches(v, actual[k]) for k, v in expected.items())
    if expected == "…":
        return True
    if isinstance(expected, str) and expected.endswith("…"):
        return isinstance(actual, str) and actual.startswith(expected[:-1])
    return expected == actual


def run_step(command, base, key, provider_id):
    """Runs one README command as a shell would after the README's setup line; its stdout."""
    setup = setup_line().replace("http://127.0.0.1:3000", base).replace("<the key scripts/run printed>", key)
    script = f"{setup}; ID={provider_id}\n{command}"
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300)
    return done.stdout, done.stderr


def created_id(command, stdout, provider_id):
    """The provider id once the create step has answered (the steps after it use `ID`)."""
    if provider_id or not command.startswith("curl -s -X POST $B/api/v1/providers/twilio "):
        return provider_id
    try:
        return json.loads(stdout or "{}").get("id", "")
    except json.JSONDecodeError:
        return ""


def answer_ok(lang, expected, stdout):
    if lang == "json":
        try:
            return matches(json.loads(expected), json.loads(stdout))
        except json.JSONDecodeError:
            return False
    return stdout.strip() == expected


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_stack(log):
    """`scripts/run` on free ports; its process and the base URL and API key it printed."""
    listen = f"127.0.0.1:{free_port()}"
    env = dict(os.environ, LISTEN=listen, SANDBOX_LISTEN=f"127.0.0.1:{free_port()}",
               SANDBOX_LISTEN_IE1=f"127.0.0.1:{free_port()}", SANDBOX_LISTEN_AU1=f"127.0.0.1:{free_port()}")
    for name in ["TWILIO_API_BASE_URL", "TWILIO_TRUNKING_BASE_URL", "MOTO_PORT", "TABLE_NAME", "KMS_KEY_ID"]:
        env.pop(name, None)
    stack = subprocess.Popen([str(ROOT / "scripts/run")], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=log, text=True, start_new_session=True)
    key = None
    deadline = time.monotonic() + 600
    while key is None and time.monotonic() < deadline:
        line = stack.stdout.readline()
        if not line:
            break
        log.write(line)
        if line.startswith("API key:"):
            key = line.split()[-1]
    # local-api logs to the same pipe: keep draining it, or it blocks once the pipe is full.
    threading.Thread(target=lambda: [log.write(rest) for rest in stack.stdout], daemon=True).start()
    return stack, f"http://{listen}", key


def main():
    log_path = ROOT / "target/quickstart-run.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    commands = steps()
    check("the README's Quickstart has its five curl steps", len(commands) == 5, str(commands))
    with open(log_path, "w") as log:
        stack, base, key = start_stack(log)
        try:
            if check("scripts/run starts and prints an API key", key is not None, f"see {log_path}"):
                provider_id = ""
                for command, lang, expected in commands:
                    stdout, stderr = run_step(command, base, key, provider_id)
                    provider_id = created_id(command, stdout, provider_id)
                    check(f"README: {command[:70]}", answer_ok(lang, expected, stdout) and key not in stdout,
                          f"expected {expected!r}, got {stdout[:400]!r} {stderr[:200]!r}")
        finally:
            os.killpg(stack.pid, signal.SIGINT)
            try:
                stack.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(stack.pid, signal.SIGKILL)
    return close("quickstart")


if __name__ == "__main__":
    sys.exit(main())
