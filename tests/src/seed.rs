//! Fixtures written straight into the fake and the table, for tests and benchmarks that need
//! many of them (the paths that make them for real have their own tests).

use crate::fake_twilio::FakeTwilio;
use shared::model::{OrganizationId, PhoneNumberSid};
use shared::storage::{PhoneNumberRecord, ProviderStore};
use shared::twilio::IncomingPhoneNumber;
use uuid::Uuid;

/// A new number of the fake account, with a voice URL, put on `trunk_sid` and recorded as
/// import leaves it (its routing before, as the service read it). Returns its SID.
pub async fn imported_number(
    fake: &FakeTwilio,
    store: &ProviderStore,
    org: &OrganizationId,
    provider_id: Uuid,
    account_sid: &str,
    trunk_sid: &str,
    phone_number: &str,
) -> String {
    let sid = fake.add_incoming_number(account_sid, phone_number, Some("https://example.com/voice"));
    let number: IncomingPhoneNumber =
        serde_json::from_value(fake.incoming_number_json(&sid)).expect("the fake's numbers parse");
    let previous_routing = number.voice_routing();
    fake.state().incoming_numbers.get_mut(&sid).expect("just added").trunk_sid = Some(trunk_sid.to_owned());
    let record = PhoneNumberRecord {
        id: Uuid::now_v7(),
        provider_id,
        phone_number_sid: PhoneNumberSid::parse(&sid).expect("the fake's SIDs are well formed"),
        phone_number: phone_number.to_owned(),
        friendly_name: None,
        previous_routing,
        previous_routing_sealed: None,
        imported_at: shared::time::Timestamp::now(),
    };
    store.reserve_number(org, provider_id, &record.phone_number_sid).await.expect("reserve a seeded number");
    let event =
        shared::audit::AuditEvent::new(org, provider_id, shared::audit::Action::Import).sid(&sid).detail("seeded");
    store.insert_number(org, &record, None, &event).await.expect("seed a number");
    sid
}
