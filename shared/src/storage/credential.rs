//! A provider's Twilio credential as stored: the secret sealed, the key's SID in the clear, and whether this service
//! minted the key. Attributes: `authToken`; or `apiKeySid`, `apiKeySecret` and, for a minted key, `apiKeyMinted`.

use super::StoreError;
use crate::crypto::{CryptoError, DataKey, EncryptedSecret, Envelope, SecretKind, SecretOwner};
use crate::model::{
    AccountSid, ApiKeySecret, ApiKeySid, AuthToken, CredentialType, TwilioAuth, TwilioCredentials, TwilioRegion,
};
use crate::storage::item::{Fields, Item, s, secret};
use aws_sdk_dynamodb::types::AttributeValue;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedCredential {
    pub secret: EncryptedSecret,
    pub api_key: Option<StoredApiKey>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredApiKey {
    pub sid: ApiKeySid,
    /// Made by this service in the customer's account (`mintApiKey`): it goes with the provider.
    pub minted: bool,
}

/// Why a stored credential could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenCredentialError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("the stored secret does not have the format of its kind")]
    Format,
}

impl SealedCredential {
    /// Seals the credential under the data key; `minted` for a key this service made.
    pub fn seal(data_key: &DataKey, creds: &TwilioCredentials, minted: bool) -> Self {
        match &creds.auth {
            TwilioAuth::AuthToken(token) => {
                Self { secret: data_key.seal(SecretKind::AuthToken, token.expose()), api_key: None }
            }
            TwilioAuth::ApiKey { sid, secret } => Self {
                secret: data_key.seal(SecretKind::ApiKeySecret, secret.expose()),
                api_key: Some(StoredApiKey { sid: sid.clone(), minted }),
            },
        }
    }

    fn kind(&self) -> SecretKind {
        if self.api_key.is_some() { SecretKind::ApiKeySecret } else { SecretKind::AuthToken }
    }

    /// One KMS call: the credentials to ask Twilio with.
    pub async fn open(
        &self,
        envelope: &Envelope,
        owner: &SecretOwner,
        account_sid: &AccountSid,
        region: TwilioRegion,
    ) -> Result<TwilioCredentials, OpenCredentialError> {
        let data_key = envelope.unwrap_key(owner, &self.secret).await?;
        self.open_with(&data_key, account_sid, region)
    }

    /// Opens it with the data key it was sealed under.
    pub fn open_with(
        &self,
        data_key: &DataKey,
        account_sid: &AccountSid,
        region: TwilioRegion,
    ) -> Result<TwilioCredentials, OpenCredentialError> {
        let plaintext = data_key.open(self.kind(), &self.secret)?;
        let plaintext = secrecy::ExposeSecret::expose_secret(&plaintext);
        let auth = match &self.api_key {
            None => TwilioAuth::AuthToken(AuthToken::parse(plaintext).map_err(|_| OpenCredentialError::Format)?),
            Some(key) => TwilioAuth::ApiKey {
                sid: key.sid.clone(),
                secret: ApiKeySecret::from_twilio(plaintext).map_err(|_| OpenCredentialError::Format)?,
            },
        };
        Ok(TwilioCredentials { account_sid: account_sid.clone(), auth, region })
    }

    pub fn credential_type(&self) -> CredentialType {
        if self.api_key.is_some() { CredentialType::ApiKey } else { CredentialType::AuthToken }
    }

    /// The key this service minted, which goes with the provider.
    pub fn minted_key(&self) -> Option<&ApiKeySid> {
        self.api_key.as_ref().filter(|key| key.minted).map(|key| &key.sid)
    }

    pub(crate) fn put(&self, item: &mut Item) {
        match &self.api_key {
            None => {
                item.insert("authToken".to_owned(), secret(&self.secret));
            }
            Some(key) => {
                item.insert("apiKeySid".to_owned(), s(key.sid.as_str()));
                item.insert("apiKeySecret".to_owned(), secret(&self.secret));
                if key.minted {
                    item.insert("apiKeyMinted".to_owned(), AttributeValue::Bool(true));
                }
            }
        }
    }

    pub(crate) fn read(f: &Fields<'_>) -> Result<Self, StoreError> {
        Self::read_opt(f)?.ok_or_else(|| StoreError::Corrupt("the item holds no Twilio credential".into()))
    }

    pub(crate) fn read_opt(f: &Fields<'_>) -> Result<Option<Self>, StoreError> {
        if let Some(sid) = f.opt_string("apiKeySid")? {
            let sid =
                ApiKeySid::parse(&sid).map_err(|_| StoreError::Corrupt("attribute apiKeySid is malformed".into()))?;
            let minted = f.0.get("apiKeyMinted").is_some() && f.boolean("apiKeyMinted")?;
            return Ok(Some(Self { secret: f.secret("apiKeySecret")?, api_key: Some(StoredApiKey { sid, minted }) }));
        }
        Ok(f.opt_secret("authToken")?.map(|secret| Self { secret, api_key: None }))
    }
}
