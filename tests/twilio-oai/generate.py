"""Writes tests/twilio-oai/operations.json: the operations of Twilio's official OpenAPI
documents that the service and the fake Twilio use, with the schema of every path, query and
form parameter ($refs resolved) and the spec's example answers. The fake checks every request
against it, and the client's deserialisers are tested on the examples, so a fresh clone's tests
need nothing outside the repository.

Usage: python3 tests/twilio-oai/generate.py [DIR]   (DIR: where twilio_api_v2010.json,
twilio_trunking_v1.json and twilio_routes_v2.json are; default ../shared/twilio-oai beside the
repository)
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "twilio-oai"
USED = {
    "twilio_api_v2010.json": [
        "/2010-04-01/Accounts/{Sid}.json",
        "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json",
        "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/{Sid}.json",
        "/2010-04-01/Accounts/{AccountSid}/Applications/{Sid}.json",
        "/2010-04-01/Accounts/{AccountSid}/Keys.json",
        "/2010-04-01/Accounts/{AccountSid}/Keys/{Sid}.json",
        "/2010-04-01/Accounts/{AccountSid}/SIP/CredentialLists.json",
        "/2010-04-01/Accounts/{AccountSid}/SIP/CredentialLists/{Sid}.json",
        "/2010-04-01/Accounts/{AccountSid}/SIP/CredentialLists/{CredentialListSid}/Credentials.json",
        "/2010-04-01/Accounts/{AccountSid}/SIP/CredentialLists/{CredentialListSid}/Credentials/{Sid}.json",
    ],
    "twilio_trunking_v1.json": [
        "/v1/Trunks",
        "/v1/Trunks/{Sid}",
        "/v1/Trunks/{TrunkSid}/CredentialLists",
        "/v1/Trunks/{TrunkSid}/CredentialLists/{Sid}",
        "/v1/Trunks/{TrunkSid}/PhoneNumbers",
        "/v1/Trunks/{TrunkSid}/PhoneNumbers/{Sid}",
        "/v1/Trunks/{TrunkSid}/OriginationUrls",
        "/v1/Trunks/{TrunkSid}/OriginationUrls/{Sid}",
    ],
    "twilio_routes_v2.json": [
        "/v2/PhoneNumbers/{PhoneNumber}",
    ],
}
KEPT = ["type", "enum", "pattern", "minLength", "maxLength", "minimum", "maximum", "format"]


def resolve(schema, components):
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    return {k: schema[k] for k in KEPT if k in schema}


def main():
    operations = []
    for file, paths in USED.items():
        doc = json.loads((SOURCE / file).read_text())
        components = doc["components"]["schemas"]
        for path in paths:
            for method, op in doc["paths"][path].items():
                if method not in ("get", "post", "delete"):
                    continue
                params = {"path": {}, "query": {}}
                for p in op.get("parameters", []):
                    params[p["in"]][p["name"]] = resolve(p["schema"], components)
                form, required = {}, []
                body = op.get("requestBody", {}).get("content", {}).get("application/x-www-form-urlencoded")
                if body:
                    form = {k: resolve(v, components) for k, v in body["schema"].get("properties", {}).items()}
                    required = body["schema"].get("required", [])
                # The spec's own example answers, which the client's deserialisers are tested on.
                examples = {}
                for status, response in op.get("responses", {}).items():
                    content = response.get("content", {}).get("application/json", {})
                    for example in content.get("examples", {}).values():
                        examples.setdefault(status, example["value"])
                operations.append({
                    "operationId": op["operationId"], "method": method.upper(), "path": path,
                    "pathParams": params["path"], "query": params["query"], "form": form, "required": required,
                    "examples": examples,
                })
    out = Path(__file__).with_name("operations.json")
    out.write_text(json.dumps({"source": "twilio/twilio-oai (see ../shared/twilio-oai/SOURCE.md)",
                               "operations": operations}, indent=1, sort_keys=True) + "\n")
    print(f"{len(operations)} operations -> {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
