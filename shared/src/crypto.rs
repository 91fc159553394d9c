//! Envelope encryption of secrets (auth tokens, SIP passwords): KMS data keys, AES-256-GCM bound to the organization,
//! the provider and the field. The scheme: docs/security.md.

use crate::error::Cause;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use aws_sdk_kms::operation::decrypt::DecryptError;
use aws_sdk_kms::types::DataKeySpec;
use secrecy::SecretString;
use std::fmt;
use uuid::Uuid;
use zeroize::{Zeroize, Zeroizing};

use crate::model::OrganizationId;

/// The version of the stored envelope layout.
pub const FORMAT_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("KMS request failed: {}", crate::error::chain(.0))]
    Kms(#[source] Cause),
    /// The encrypted data key does not belong to this organization and provider
    /// (or was tampered with).
    #[error("the secret does not belong to this record")]
    WrongContext,
    #[error("the stored secret is malformed: {0}")]
    Malformed(&'static str),
}

/// What a secret is; bound into the ciphertext so secrets cannot be swapped between fields.
#[derive(Debug, Clone, Copy)]
pub enum SecretKind {
    AuthToken,
    ApiKeySecret,
    SipPassword,
    /// A number's voice configuration from before import (its URLs may carry credentials).
    VoiceRouting,
}

impl SecretKind {
    fn as_str(self) -> &'static str {
        match self {
            SecretKind::AuthToken => "authToken",
            SecretKind::ApiKeySecret => "apiKeySecret",
            SecretKind::SipPassword => "sipPassword",
            SecretKind::VoiceRouting => "voiceRouting",
        }
    }
}

/// Whose secret it is: the KMS encryption context.
#[derive(Debug, Clone)]
pub struct SecretOwner {
    pub organization_id: OrganizationId,
    pub provider_id: Uuid,
}

impl SecretOwner {
    fn associated_data(&self, kind: SecretKind) -> Vec<u8> {
        format!("v{FORMAT_VERSION}\x1f{}\x1f{}\x1f{}", self.organization_id, self.provider_id, kind.as_str())
            .into_bytes()
    }
}

/// A secret as stored: nothing in it is plaintext.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptedSecret {
    pub format_version: u8,
    pub key_id: String,
    pub encrypted_data_key: Vec<u8>,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for EncryptedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedSecret")
            .field("format_version", &self.format_version)
            .field("key_id", &self.key_id)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

/// A plaintext data key, zeroized when dropped, never printed.
pub struct DataKey {
    plaintext: Zeroizing<[u8; 32]>,
    encrypted: Vec<u8>,
    key_id: String,
    owner: SecretOwner,
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey([REDACTED])")
    }
}

impl DataKey {
    /// Seals one secret under this data key with a fresh random nonce.
    pub fn seal(&self, kind: SecretKind, plaintext: &str) -> EncryptedSecret {
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(self.plaintext.as_slice()));
        let mut nonce = Nonce::default();
        getrandom::fill(&mut nonce).expect("the OS random source");
        let aad = self.owner.associated_data(kind);
        let ciphertext = cipher
            .encrypt(&nonce, Payload { msg: plaintext.as_bytes(), aad: &aad })
            .expect("AES-GCM encryption of a short secret cannot fail");
        EncryptedSecret {
            format_version: FORMAT_VERSION,
            key_id: self.key_id.clone(),
            encrypted_data_key: self.encrypted.clone(),
            nonce: nonce.to_vec(),
            ciphertext,
        }
    }
}

/// Envelope encryption with one KMS key. Cheap to clone (the SDK client is shared).
#[derive(Clone, Debug)]
pub struct Envelope {
    kms: aws_sdk_kms::Client,
    key_id: String,
}

impl Envelope {
    pub fn new(kms: aws_sdk_kms::Client, key_id: impl Into<String>) -> Self {
        Self { kms, key_id: key_id.into() }
    }

    /// One KMS call: a fresh AES-256 data key bound to the owner.
    pub async fn generate_data_key(&self, owner: &SecretOwner) -> Result<DataKey, CryptoError> {
        let output = self
            .kms
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .encryption_context("organizationId", owner.organization_id.as_str())
            .encryption_context("providerId", owner.provider_id.to_string())
            .send()
            .await
            .map_err(|e| CryptoError::Kms(Cause::sdk(e)))?;
        let mut plaintext_vec =
            output.plaintext.ok_or(CryptoError::Malformed("KMS returned no plaintext key"))?.into_inner();
        let mut plaintext = Zeroizing::new([0u8; 32]);
        let length_ok = plaintext_vec.len() == 32;
        if length_ok {
            plaintext.copy_from_slice(&plaintext_vec);
        }
        plaintext_vec.zeroize();
        if !length_ok {
            return Err(CryptoError::Malformed("KMS returned a data key that is not 256 bits"));
        }
        Ok(DataKey {
            plaintext,
            encrypted: output
                .ciphertext_blob
                .ok_or(CryptoError::Malformed("KMS returned no encrypted key"))?
                .into_inner(),
            // KMS answers with the key ARN, which stays valid when an alias is repointed.
            key_id: output.key_id.unwrap_or_else(|| self.key_id.clone()),
            owner: owner.clone(),
        })
    }

    /// One KMS call: unwraps the data key (KMS checks the owner) and opens the secret.
    pub async fn open(
        &self,
        owner: &SecretOwner,
        kind: SecretKind,
        secret: &EncryptedSecret,
    ) -> Result<SecretString, CryptoError> {
        self.unwrap_key(owner, secret).await?.open(kind, secret)
    }

    /// One KMS call: the data key a secret was sealed under, to open it and every other
    /// secret sealed under the same key (see [`DataKey::opens`]) without asking KMS again.
    pub async fn unwrap_key(&self, owner: &SecretOwner, secret: &EncryptedSecret) -> Result<DataKey, CryptoError> {
        if secret.format_version != FORMAT_VERSION {
            return Err(CryptoError::Malformed("unknown format version"));
        }
        let output = self
            .kms
            .decrypt()
            .key_id(&secret.key_id)
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(secret.encrypted_data_key.clone()))
            .encryption_context("organizationId", owner.organization_id.as_str())
            .encryption_context("providerId", owner.provider_id.to_string())
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(DecryptError::InvalidCiphertextException(_) | DecryptError::IncorrectKeyException(_)) => {
                    CryptoError::WrongContext
                }
                _ => CryptoError::Kms(Cause::sdk(e)),
            })?;
        let mut key = output.plaintext.ok_or(CryptoError::Malformed("KMS returned no plaintext key"))?.into_inner();
        let length_ok = key.len() == 32;
        let mut plaintext = Zeroizing::new([0u8; 32]);
        if length_ok {
            plaintext.copy_from_slice(&key);
        }
        key.zeroize();
        if !length_ok {
            return Err(CryptoError::Malformed("data key is not 256 bits"));
        }
        Ok(DataKey {
            plaintext,
            encrypted: secret.encrypted_data_key.clone(),
            key_id: secret.key_id.clone(),
            owner: owner.clone(),
        })
    }
}

impl DataKey {
    /// Whether this key can open the secret (it was sealed under it).
    pub fn opens(&self, secret: &EncryptedSecret) -> bool {
        self.encrypted == secret.encrypted_data_key
    }

    /// Opens a secret sealed under this key; no KMS call.
    pub fn open(&self, kind: SecretKind, secret: &EncryptedSecret) -> Result<SecretString, CryptoError> {
        if secret.format_version != FORMAT_VERSION {
            return Err(CryptoError::Malformed("unknown format version"));
        }
        if secret.nonce.len() != NONCE_LEN {
            return Err(CryptoError::Malformed("nonce has the wrong length"));
        }
        if !self.opens(secret) {
            return Err(CryptoError::WrongContext);
        }
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(self.plaintext.as_slice()));
        let aad = self.owner.associated_data(kind);
        let plaintext = Zeroizing::new(
            cipher
                .decrypt(Nonce::from_slice(&secret.nonce), Payload { msg: &secret.ciphertext, aad: &aad })
                .map_err(|_| CryptoError::WrongContext)?,
        );
        let text = std::str::from_utf8(&plaintext).map_err(|_| CryptoError::Malformed("secret is not UTF-8"))?;
        Ok(SecretString::from(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes_gcm::aead::Aead;

    fn data_key(owner: SecretOwner) -> DataKey {
        DataKey { plaintext: Zeroizing::new([7u8; 32]), encrypted: vec![1, 2, 3], key_id: "k".into(), owner }
    }

    fn owner(org: &str) -> SecretOwner {
        SecretOwner { organization_id: OrganizationId::parse(org).unwrap(), provider_id: Uuid::nil() }
    }

    #[test]
    fn sealing_uses_fresh_nonces_and_hides_the_plaintext() {
        let key = data_key(owner("org-a"));
        let a = key.seal(SecretKind::AuthToken, "topsecretvalue");
        let b = key.seal(SecretKind::AuthToken, "topsecretvalue");
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
        assert!(!a.ciphertext.windows(6).any(|w| w == b"topsec"));
        assert!(!format!("{key:?}{a:?}").contains("topsecret"));
    }

    #[test]
    fn associated_data_binds_owner_and_kind() {
        let key = data_key(owner("org-a"));
        let sealed = key.seal(SecretKind::AuthToken, "value");
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&[7u8; 32]));
        let open = |o: &SecretOwner, kind| {
            cipher.decrypt(
                Nonce::from_slice(&sealed.nonce),
                Payload { msg: &sealed.ciphertext, aad: &o.associated_data(kind) },
            )
        };
        assert!(open(&owner("org-a"), SecretKind::AuthToken).is_ok());
        assert!(open(&owner("org-b"), SecretKind::AuthToken).is_err());
        assert!(open(&owner("org-a"), SecretKind::SipPassword).is_err());
    }
}
