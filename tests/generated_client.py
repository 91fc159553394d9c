"""A client generated from openapi.json, used as a platform engineer uses it.

Usage: generated_client.py BASE_URL API_KEY (scripts/lib/generated-client.sh starts local-api,
the fake Twilio and an API key). It generates the client with openapi-python-client into a
temporary folder (any warning or error about the document fails), imports it, and runs the
walk-through with it: create, get, list, available numbers, import, list numbers, update,
verify, repair, remove a number, rotate the token, rotate the SIP credential and finish,
delete. Each answer must have its documented
status and parse into its documented type. Prints `generated-client: N passed, M failed` last.
"""

import importlib
import subprocess
import sys
import tempfile
from pathlib import Path

from tally import check, close

ROOT = Path(__file__).resolve().parent.parent
DEMO_ACCOUNT_SID = "AC00000000000000000000000000000001"
DEMO_AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
DEMO_NUMBER_SID = "PN00000000000000000000000000000001"
# The sandbox's demo Standard API key (tests/src/fake_twilio.rs).
DEMO_API_KEY_SID = "SK5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e"
DEMO_API_KEY_SECRET = "AbCdEfGhIjKlMnOpQrStUvWxYz012345"
PACKAGE = "twilio_provider_service_client"



def generate(folder):
    """The generator's run over the committed document; True when it said nothing about it."""
    generator = Path(sys.executable).with_name("openapi-python-client")
    done = subprocess.run([str(generator), "generate", "--path", str(ROOT / "openapi.json"), "--meta", "none",
                           "--output-path", str(folder / PACKAGE)], capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    complaints = [line for line in output.splitlines() if "warning" in line.lower() or "error" in line.lower()]
    return check("openapi-python-client generates the client without a warning or an error",
                 done.returncode == 0 and not complaints, output[-2000:])


def answered(name, response, status, model):
    ok = response.status_code == status and (model is None or isinstance(response.parsed, model))
    check(f"{name}: {status}" + (f" {model.__name__}" if model else ""), ok,
          f"{response.status_code} {type(response.parsed).__name__} {response.content[:300]!r}")
    return response.parsed if ok else None


def walk_through(base_url, api_key):
    # One module per operation, grouped by the document's tags: api.<tag>.<operationId>.
    op = lambda path: importlib.import_module(f"{PACKAGE}.api.{path}").sync_detailed
    models = importlib.import_module(f"{PACKAGE}.models")
    client = importlib.import_module(PACKAGE).AuthenticatedClient(base_url=base_url, token=api_key, timeout=60)

    with client:
        body = models.CreateTwilioProviderRequest(account_sid=DEMO_ACCOUNT_SID, auth_token=DEMO_AUTH_TOKEN,
                                                  name="Generated client", supports_call_transfer=True)
        provider = answered("create", op("providers.create_twilio_provider")(client=client, body=body), 201,
                            models.TwilioProviderResponse)
        if provider is None:
            return
        check("create: no auth token in the answer", DEMO_AUTH_TOKEN not in str(provider.to_dict()))
        id = provider.id

        answered("get", op("providers.get_twilio_provider")(id, client=client), 200,
                 models.TwilioProviderResponse)
        page = answered("list", op("providers.list_providers")(client=client, limit=10), 200,
                        models.ProviderPage)
        check("list: holds the provider", page is not None and any(item.id == id for item in page.items))
        available = answered("available numbers",
                             op("phone_numbers.list_available_numbers")(id, client=client), 200,
                             models.AvailableNumbers)
        check("available numbers: the account's numbers",
              available is not None and any(n.phone_number_sid == DEMO_NUMBER_SID for n in available.items))
        imported = answered("import", op("phone_numbers.import_numbers")(
            id, client=client, body=models.ImportNumbersRequest(phone_number_sids=[DEMO_NUMBER_SID])), 200,
            models.ImportResult)
        check("import: one imported", imported is not None and imported.success_count == 1)
        listed = answered("list numbers", op("phone_numbers.list_phone_numbers")(id, client=client),
                          200, models.PhoneNumberPage)
        updated = answered("update", op("providers.update_twilio_provider")(
            id, client=client, body=models.UpdateTwilioProviderRequest(name="Renamed", region=models.Region.IE1)),
            200, models.TwilioProviderResponse)
        check("update: the new name", updated is not None and updated.name == "Renamed")
        verified = answered("verify", op("verification_and_repair.verify_provider")(id, client=client), 200,
                            models.VerifyResponse)
        check("verify: verified", verified is not None and verified.status == models.VerificationStatus.VERIFIED)
        answered("repair", op("verification_and_repair.repair_provider")(id, client=client), 200,
                 models.RepairResponse)
        if listed is not None and listed.items:
            removed = answered("remove a number", op("phone_numbers.remove_phone_number")(
                id, listed.items[0].id, client=client), 200, models.RemovedNumber)
            check("remove a number: its routing given back", removed is not None and removed.restored is True)
        keyed = answered("set an API key", op("providers.replace_twilio_credentials")(
            id, client=client, body=models.ReplaceCredentialsRequest(
                api_key_sid=DEMO_API_KEY_SID, api_key_secret=DEMO_API_KEY_SECRET)), 200,
            models.TwilioProviderResponse)
        check("set an API key: the key is stored, never its secret", keyed is not None
              and keyed.api_key_sid == DEMO_API_KEY_SID and DEMO_API_KEY_SECRET not in str(keyed.to_dict()))
        answered("rotate the token", op("providers.rotate_twilio_auth_token")(
            id, client=client, body=models.RotateAuthTokenRequest(auth_token=DEMO_AUTH_TOKEN)), 200,
            models.TwilioProviderResponse)
        rotated = answered("rotate the SIP credential", op("sip_credential.rotate_sip_credential")(
            id, client=client, body=models.RotateSipCredentialRequest(overlap_seconds=600)), 200,
            models.SipCredentialState)
        check("rotate the SIP credential: the previous one lasts the overlap",
              rotated is not None and isinstance(rotated.previous, models.PreviousSipCredentialView))
        finished = answered("finish the rotation", op("sip_credential.finish_sip_credential_rotation")(
            id, client=client), 200, models.SipCredentialState)
        check("finish the rotation: no previous one", finished is not None and finished.previous is None)
        answered("delete", op("providers.delete_provider")(id, client=client), 204, None)
        answered("get after delete", op("providers.get_twilio_provider")(id, client=client), 404,
                 models.Problem)
        trail = answered("the trail after delete", op("audit.list_events")(
            client=client, provider_id=id, limit=100), 200, models.EventPage)
        actions = [event.action.value for event in trail.items] if trail is not None else []
        check("the trail after delete: newest first, from create to deleted",
              actions[:1] == ["deleted"] and actions[-1:] == ["create"] and "import" in actions, str(actions))


def main():
    base_url, api_key = sys.argv[1:3]
    with tempfile.TemporaryDirectory() as folder:
        if generate(Path(folder)):
            sys.path.insert(0, folder)
            walk_through(base_url, api_key)
    return close("generated-client")


if __name__ == "__main__":
    sys.exit(main())
