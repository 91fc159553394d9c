"""Schemathesis hooks for scripts/lib/schemathesis.sh (loaded through SCHEMATHESIS_HOOKS).

Only positive test cases (schema-valid requests, which every check expects to be accepted)
are touched, and only where the document cannot promise acceptance because the answer
depends on state outside the request:

- Twilio credentials: a well-formed Account SID and Auth Token that Twilio does not know are
  refused (422), and an organization holds one provider per account (409). Each create takes
  the next account of the fake Twilio (its demo account, then the FAKE_TWILIO_EXTRA_ACCOUNTS
  more it was started with, all with the demo token), so creates succeed and the stateful phase
  can follow the create's links to every operation on the new provider. A token is valid in
  its own Twilio Region only: creates and rotations carry the token of the provider's
  `twilioRegion`, and a `PUT` that names a `twilioRegion` names the provider's own (another is
  the documented 400).
- Phone number SIDs: an import carries the numbers of the provider's own account (unknown SIDs
  are accepted too, as per-number `not_found` results, but then nothing is imported to remove).
- `nextToken`: only a token the API returned for that listing is valid; a generated one is the
  documented 400. Positive cases go without it (negative ones still send malformed tokens).
- `Idempotency-Key`: a key used before with a different request is the documented 422.
  Positive cases that carry one get a fresh key.
- API keys: a well-formed key pair Twilio does not know is refused (422) like a token, and a
  token with a key is the documented 400 (one kind or the other). Creates and credential
  changes go with the token of the provider's Region, without a key and without minting (a
  minted key's provider needs the token to be deleted, which a generated DELETE would not
  carry).
- `since` after `until` is the documented 400: positive cases get them in order.

Negative cases are left as generated: they must be refused whatever they carry.
"""

import datetime
import itertools
import os
import threading
import uuid

import schemathesis

# tests/src/bin/fake_twilio.rs: the demo account and its numbers, and the extra accounts.
DEMO_ACCOUNT_SID = "AC00000000000000000000000000000001"
DEMO_AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
# Every account's token in each Twilio Region the fake serves (a token is valid in its own only).
REGION_TOKENS = {
    "us1": DEMO_AUTH_TOKEN,
    "ie1": "e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1",
    "au1": "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1",
}
DEMO_NUMBER_SIDS = [
    "PN00000000000000000000000000000001",
    "PN00000000000000000000000000000002",
    "PN00000000000000000000000000000003",
]
EXTRA_ACCOUNTS = int(os.environ.get("FAKE_TWILIO_EXTRA_ACCOUNTS", "0"))
NUMBERS_PER_ACCOUNT = int(os.environ.get("FAKE_TWILIO_NUMBERS_PER_ACCOUNT", "3"))


def utc_seconds(text):
    """The UTC second an RFC 3339 date-time names (None if it is not one)."""
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00")).timestamp()
    except ValueError:
        return None


def account_sid(n):
    return DEMO_ACCOUNT_SID if n == 1 else f"AC{n:032x}"


def number_sids(account):
    n = 0 if account == DEMO_ACCOUNT_SID else int(account[2:], 16)
    return [f"PN{n:030x}{k:02x}" for k in range(1, NUMBERS_PER_ACCOUNT + 1)]


CREATE = ("POST", "/api/v1/providers/twilio")
UPDATE = ("PUT", "/api/v1/providers/twilio/{id}")
ROTATE = ("PATCH", "/api/v1/providers/twilio/{id}/auth-token")
CREDENTIALS = ("PATCH", "/api/v1/providers/{id}/credentials")
IMPORT = ("POST", "/api/v1/providers/twilio/{id}/import-numbers")

_lock = threading.Lock()
_accounts = itertools.cycle(range(1, EXTRA_ACCOUNTS + 2))
# Provider id -> its Account SID and its Twilio Region, from the creates' answers.
_provider_accounts = {}
_provider_regions = {}
# Provider id -> how many of its account's numbers imports have taken: each import takes numbers
# not taken before, so it imports something and the link to number removal has an `id` to use.
_numbers_taken = {}


@schemathesis.hook
def before_call(context, case, kwargs):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return
    operation = (case.method.upper(), case.operation.path)
    body = case.body
    if isinstance(body, dict) and operation in (CREATE, CREDENTIALS):
        for name in ("apiKeySid", "apiKeySecret", "mintApiKey"):
            body.pop(name, None)
    if isinstance(body, dict):
        if operation == CREDENTIALS:
            provider = (case.path_parameters or {}).get("id")
            body["authToken"] = REGION_TOKENS[_provider_regions.get(provider, "us1")]
        if operation == CREATE:
            with _lock:
                body["accountSid"] = account_sid(next(_accounts))
            body["authToken"] = REGION_TOKENS.get(body.get("twilioRegion") or "us1", DEMO_AUTH_TOKEN)
        elif operation == ROTATE:
            provider = (case.path_parameters or {}).get("id")
            body["authToken"] = REGION_TOKENS[_provider_regions.get(provider, "us1")]
        elif operation == UPDATE and body.get("twilioRegion") is not None:
            # A provider's Twilio Region is fixed: only its own is accepted (else the documented 400).
            provider = (case.path_parameters or {}).get("id")
            body["twilioRegion"] = _provider_regions.get(provider, "us1")
        elif operation == IMPORT and isinstance(body.get("phoneNumberSids"), list):
            provider = (case.path_parameters or {}).get("id")
            wanted = max(1, min(len(body["phoneNumberSids"]), 3))
            with _lock:
                numbers = number_sids(_provider_accounts.get(provider, DEMO_ACCOUNT_SID))
                start = _numbers_taken.get(provider, 0) % len(numbers)
                _numbers_taken[provider] = start + wanted
            body["phoneNumberSids"] = (numbers[start:] + numbers[:start])[:wanted]
    if isinstance(case.query, dict) and "nextToken" in case.query:
        del case.query["nextToken"]
    if isinstance(case.query, dict) and isinstance(case.query.get("since"), str) and isinstance(case.query.get("until"), str):
        since, until = utc_seconds(case.query["since"]), utc_seconds(case.query["until"])
        if since is not None and until is not None and since > until:
            case.query["since"], case.query["until"] = case.query["until"], case.query["since"]
    # Case-insensitive: case.headers is a CaseInsensitiveDict, not a dict.
    if case.headers is not None and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = str(uuid.uuid4())


@schemathesis.hook
def after_call(context, case, response):
    if (case.method.upper(), case.operation.path) == CREATE and response.status_code == 201:
        try:
            created = response.json()
        except ValueError:
            return
        with _lock:
            _provider_accounts[created.get("id")] = created.get("accountSid")
            _provider_regions[created.get("id")] = created.get("twilioRegion", "us1")
