//! `get-sip-credential`: the call engine invokes it directly (Lambda Invoke, not API Gateway) for a provider's SIP
//! credential, and every read is audited, never the password. Contract: docs/api.md#the-call-engines-sip-credential.

use crate::provider::sip_credential::{SipCredential, SipCredentialError, SipCredentialReader, read};
use lambda_http::lambda_runtime::LambdaEvent;
use serde_json::Value;
use shared::model::OrganizationId;
use uuid::Uuid;

/// Parses the event, reads, and audits: one audit line per read that names a provider, at a
/// level no log-level setting drops (`shared::metrics::audit`).
pub async fn handle(
    reader: &SipCredentialReader,
    event: LambdaEvent<Value>,
) -> Result<SipCredential, SipCredentialError> {
    let (organization_id, provider_id) = parse_event(&event.payload)?;
    let outcome = read(reader, &organization_id, provider_id).await;
    let result = match &outcome {
        Ok(_) => "returned",
        Err(e) => e.error_type(),
    };
    shared::metrics::audit(
        "sip-credential-read",
        &[
            ("requestId", &event.context.request_id),
            ("organizationId", organization_id.as_str()),
            ("providerId", &provider_id.to_string()),
            ("outcome", result),
        ],
    );
    outcome
}

fn parse_event(event: &Value) -> Result<(OrganizationId, Uuid), SipCredentialError> {
    let field = |name: &str| event.get(name).and_then(Value::as_str);
    let mut problems = Vec::new();
    let organization_id = match field("organizationId").map(OrganizationId::parse) {
        Some(Some(org)) => Some(org),
        Some(None) => {
            problems.push("organizationId must be 1 to 128 letters, digits, '-', '_', '.' or ':'");
            None
        }
        None => {
            problems.push("organizationId (a string) is required");
            None
        }
    };
    let provider_id = match field("providerId").map(Uuid::parse_str) {
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => {
            problems.push("providerId must be a UUID");
            None
        }
        None => {
            problems.push("providerId (a string) is required");
            None
        }
    };
    match (organization_id, provider_id) {
        (Some(org), Some(id)) => Ok((org, id)),
        _ => Err(SipCredentialError::InvalidRequest(format!("invalid event: {}", problems.join("; ")))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_name_every_bad_field() {
        let Err(SipCredentialError::InvalidRequest(message)) = parse_event(&json!({"providerId": "nope"})) else {
            panic!("accepted");
        };
        assert!(message.contains("organizationId") && message.contains("providerId"), "{message}");
        let ok = parse_event(&json!({"organizationId": "org-1", "providerId": Uuid::nil().to_string()}));
        assert!(ok.is_ok());
    }
}
