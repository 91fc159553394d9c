//! Making and finding the Twilio resources of a provider, shared by create and repair: their
//! unique names, a trunk whose domain name may be taken, and a create of unknown outcome
//! looked up by name.

use rand::RngExt;
use rand::distr::Alphanumeric;
use shared::model::{TrunkSettings, TwilioCredentials};
use shared::twilio::{
    CODE_DOMAIN_NAME_INVALID, CODE_DOMAIN_NAME_TAKEN, Trunk, TwilioClient, TwilioError, TwilioResource,
};
use uuid::Uuid;

/// How many fresh domain labels to try when Twilio says a domain name is taken.
const DOMAIN_NAME_ATTEMPTS: u32 = 3;
/// Twilio limits friendly names to 64 characters.
pub(crate) const FRIENDLY_NAME_MAX_CHARS: usize = 64;

/// `POST /v1/Trunks` with the first domain label, trying the next when the name is taken.
/// Returns the trunk and its label, or the error and the last label tried.
pub(crate) async fn create_trunk(
    twilio: &TwilioClient,
    creds: &TwilioCredentials,
    friendly_name: &str,
    settings: &TrunkSettings,
    labels: &[String],
) -> Result<(Trunk, String), (TwilioError, String)> {
    let mut labels = labels.iter().peekable();
    loop {
        let label = labels.next().expect("at least one domain label").clone();
        match twilio.create_trunk(creds, friendly_name, &domain_name(&label), settings).await {
            Ok(trunk) => return Ok((trunk, label)),
            Err(e)
                if matches!(e.code(), Some(CODE_DOMAIN_NAME_TAKEN | CODE_DOMAIN_NAME_INVALID))
                    && labels.peek().is_some() =>
            {
                tracing::info!("trunk domain name taken; trying another");
            }
            Err(e) => return Err((e, label)),
        }
    }
}

/// How many trunks or credential lists to look through for one created by a request of unknown
/// outcome.
const LOOKUP_MAX_ITEMS: usize = 1000;

/// A create of unknown outcome (it timed out, broke off, or was answered unreadably) may have
/// happened: the trunk with this (unique) domain name, if it exists, so that a rollback removes it.
pub(crate) async fn find_trunk_by_domain(
    twilio: &TwilioClient,
    creds: &TwilioCredentials,
    domain_name: &str,
) -> Option<TwilioResource> {
    match twilio.list_trunks(creds, LOOKUP_MAX_ITEMS).await {
        Ok(trunks) => trunks
            .into_iter()
            .find(|t| t.domain_name.as_deref() == Some(domain_name))
            .map(|trunk| TwilioResource::Trunk { trunk_sid: trunk.sid }),
        Err(e) => {
            tracing::error!(domain_name, error = %e, "could not check whether a trunk create of unknown outcome happened");
            None
        }
    }
}

/// Likewise for a credential list, by its unique friendly name.
pub(crate) async fn find_list_by_name(
    twilio: &TwilioClient,
    creds: &TwilioCredentials,
    friendly_name: &str,
) -> Option<TwilioResource> {
    match twilio.list_credential_lists(creds, LOOKUP_MAX_ITEMS).await {
        Ok(lists) => lists
            .into_iter()
            .find(|l| l.friendly_name.as_deref() == Some(friendly_name))
            .map(|list| TwilioResource::CredentialList { list_sid: list.sid }),
        Err(e) => {
            tracing::error!(friendly_name, error = %e, "could not check whether a credential list create of unknown outcome happened");
            None
        }
    }
}

pub(crate) fn domain_name(label: &str) -> String {
    format!("{label}.pstn.twilio.com")
}

/// `vai-` and 16 random lowercase letters and digits: unique enough that a clash is rare,
/// and a valid DNS label.
fn new_domain_label() -> String {
    let suffix: String =
        rand::rng().sample_iter(Alphanumeric).map(|b| (b as char).to_ascii_lowercase()).take(16).collect();
    format!("vai-{suffix}")
}

/// A SIP username for a credential added to an existing list (a rotation's, a repair's): the
/// provider's id and a random part, 32 characters (Twilio's limit), so it never meets a
/// username the list already holds.
pub(crate) fn fresh_sip_username(provider_id: Uuid) -> String {
    let suffix: String =
        rand::rng().sample_iter(Alphanumeric).map(|b| (b as char).to_ascii_lowercase()).take(8).collect();
    format!("{}-{suffix}", &provider_id.simple().to_string()[..23])
}

/// The labels a new trunk tries in turn (a clash with another account's domain moves on).
pub(crate) fn new_domain_labels() -> Vec<String> {
    (0..DOMAIN_NAME_ATTEMPTS).map(|_| new_domain_label()).collect()
}

pub(crate) fn truncate_chars(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_labels_are_dns_safe_and_random() {
        let a = new_domain_label();
        assert!(a.len() <= 63 && a.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
        assert_ne!(a, new_domain_label());
    }
}
