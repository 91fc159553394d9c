//! The API Gateway HTTP API Lambda authorizer: looks the bearer API key up and answers its organization, or denies it.
//! Why: docs/decisions/authorizer-fails-rather-than-denies.md.

use lambda_http::aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use lambda_http::lambda_runtime::{Error, LambdaEvent};
use serde::Serialize;
use serde_json::json;
use shared::storage::StoreError;
use shared::storage::api_keys::ApiKeyStore;

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerResponse {
    pub is_authorized: bool,
    pub context: serde_json::Value,
}

pub async fn handle(
    keys: &ApiKeyStore,
    event: LambdaEvent<ApiGatewayV2CustomAuthorizerV2Request>,
) -> Result<AuthorizerResponse, Error> {
    let header = event.payload.headers.get("authorization").and_then(|v| v.to_str().ok());
    Ok(authorize(keys, header).await?)
}

/// The decision for an `Authorization` header value; `Err` when the key could not be looked up.
pub async fn authorize(keys: &ApiKeyStore, authorization: Option<&str>) -> Result<AuthorizerResponse, StoreError> {
    match keys.authorize(authorization).await {
        Ok(Some(key)) => Ok(AuthorizerResponse {
            is_authorized: true,
            context: json!({"organizationId": key.organization_id.as_str(), "apiKeyId": key.key_id}),
        }),
        Ok(None) => Ok(AuthorizerResponse { is_authorized: false, context: json!({}) }),
        Err(e) => {
            tracing::error!(error = %e, "API key lookup failed; no decision");
            Err(e)
        }
    }
}
