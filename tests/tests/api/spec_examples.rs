//! The client's deserialisers against the example answers in Twilio's own OpenAPI documents
//! (`tests/twilio-oai/operations.json`, from `generate.py`): what the fake answers is one shape,
//! these are Twilio's (empty strings, nulls, fields the fake never sends).

use serde::de::DeserializeOwned;
use serde_json::Value;
use shared::twilio::{
    Account, Application, Credential, CredentialList, IncomingPhoneNumber, NewApiKey, NumberRoutes, OriginationUrl,
    Trunk, TrunkCredentialList,
};

fn example(operation_id: &str, path_prefix: &str) -> Value {
    let document: Value = serde_json::from_str(include_str!("../../twilio-oai/operations.json")).unwrap();
    let operation = document["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|op| op["operationId"] == operation_id && op["path"].as_str().unwrap().starts_with(path_prefix))
        .unwrap_or_else(|| panic!("no operation {operation_id} under {path_prefix}"));
    let examples = operation["examples"].as_object().unwrap();
    examples.values().next().unwrap_or_else(|| panic!("{operation_id} has no example")).clone()
}

fn one<T: DeserializeOwned>(operation_id: &str, path_prefix: &str) -> T {
    serde_json::from_value(example(operation_id, path_prefix))
        .unwrap_or_else(|e| panic!("{operation_id}'s example does not deserialise: {e}"))
}

fn page<T: DeserializeOwned>(operation_id: &str, path_prefix: &str, key: &str) -> Vec<T> {
    let mut page = example(operation_id, path_prefix);
    serde_json::from_value(page[key].take())
        .unwrap_or_else(|e| panic!("{operation_id}'s example page does not deserialise: {e}"))
}

#[test]
fn every_answer_the_client_reads_deserialises_from_twilios_examples() {
    let account: Account = one("FetchAccount", "/2010-04-01");
    assert!(!account.status.is_empty() && !account.account_type.is_empty());
    let _: Application = one("FetchApplication", "/2010-04-01");
    let key: NewApiKey = one("CreateNewKey", "/2010-04-01");
    assert!(key.sid.as_str().starts_with("SK"));

    // A number on no trunk with no application: Twilio's example has `voice_application_sid: ""`
    // and `trunk_sid: null`, both read as unset.
    let number: IncomingPhoneNumber = one("FetchIncomingPhoneNumber", "/2010-04-01");
    let routing = number.voice_routing();
    assert_eq!((routing.trunk_sid, routing.voice_application_sid), (None, None));
    assert!(number.capabilities.unwrap().voice);
    let _: IncomingPhoneNumber = one("UpdateIncomingPhoneNumber", "/2010-04-01");
    let _: Vec<IncomingPhoneNumber> = page("ListIncomingPhoneNumber", "/2010-04-01", "incoming_phone_numbers");

    let _: CredentialList = one("CreateSipCredentialList", "/2010-04-01");
    let _: CredentialList = one("FetchSipCredentialList", "/2010-04-01");
    let _: Vec<CredentialList> = page("ListSipCredentialList", "/2010-04-01", "credential_lists");
    let _: Credential = one("CreateSipCredential", "/2010-04-01");
    let _: Vec<Credential> = page("ListSipCredential", "/2010-04-01", "credentials");

    let trunk: Trunk = one("CreateTrunk", "/v1");
    assert!(trunk.transfer_mode.is_some());
    let _: Trunk = one("FetchTrunk", "/v1");
    let _: Trunk = one("UpdateTrunk", "/v1");
    let _: Vec<Trunk> = page("ListTrunk", "/v1", "trunks");
    let _: TrunkCredentialList = one("CreateCredentialList", "/v1");
    let _: Vec<TrunkCredentialList> = page("ListCredentialList", "/v1", "credential_lists");
    let _: OriginationUrl = one("CreateOriginationUrl", "/v1");
    let _: OriginationUrl = one("UpdateOriginationUrl", "/v1");
    let _: Vec<OriginationUrl> = page("ListOriginationUrl", "/v1", "origination_urls");

    let routes: NumberRoutes = one("FetchPhoneNumber", "/v2");
    assert!(routes.voice_region.is_some());
    let _: NumberRoutes = one("UpdatePhoneNumber", "/v2");
}
