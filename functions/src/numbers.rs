//! Taking an imported number back off a provider's trunk, used by number removal, by a failed
//! import and by provider deletion.

use shared::model::TwilioCredentials;
use shared::store::PhoneNumberRecord;
use shared::twilio::{TwilioClient, TwilioError};

/// Detaches the number from the trunk and restores the voice routing it had before import.
/// A 404 counts as done (already detached, or the number left the account). On failure,
/// returns what failed.
pub async fn release_number(
    twilio: &TwilioClient,
    creds: &TwilioCredentials,
    trunk_sid: &str,
    number: &PhoneNumberRecord,
) -> Result<(), (&'static str, TwilioError)> {
    match twilio.detach_phone_number(creds, trunk_sid, &number.phone_number_sid).await {
        Err(e) if !e.is_not_found() => return Err(("detach the number from the trunk", e)),
        _ => {}
    }
    if number.previous_voice_url.is_none() && number.previous_voice_application_sid.is_none() {
        return Ok(());
    }
    let restored = twilio
        .set_voice_routing(
            creds,
            &number.phone_number_sid,
            number.previous_voice_url.as_deref(),
            number.previous_voice_application_sid.as_deref(),
        )
        .await;
    match restored {
        Err(e) if !e.is_not_found() => Err(("restore the number's voice routing", e)),
        _ => Ok(()),
    }
}
