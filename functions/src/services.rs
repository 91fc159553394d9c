//! The clients a function needs, built once per process from configuration.

use shared::config::{
    ConfigError, StorageConfig, TwilioConfig, default_region_from_env, platform_sip_uris_from_env, queue_url_from_env,
    table_name_from_env,
};
use shared::crypto::Envelope;
use shared::model::{PlatformSipUris, Region};
use shared::queue::Queue;
use shared::storage::ProviderStore;
use shared::storage::idempotency::IdempotencyStore;
use shared::twilio::TwilioClient;

/// Storage, encryption and Twilio: what the provider lifecycle functions use.
#[derive(Clone, Debug)]
pub struct Services {
    pub store: ProviderStore,
    pub idempotency: IdempotencyStore,
    pub envelope: Envelope,
    pub twilio: TwilioClient,
    /// Used when a create request names no region.
    pub default_region: Region,
    /// Where every trunk's origination URL sends inbound calls (`PLATFORM_SIP_URI`).
    pub platform_sip_uris: PlatformSipUris,
    /// Where a delete that runs out of time continues (`DELETION_QUEUE_URL`); the functions
    /// that delete require it at init.
    pub deletions: Option<Queue>,
}

impl Services {
    /// Reads configuration and builds the clients; no network call is made here.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let storage = StorageConfig::from_env()?;
        let twilio = TwilioConfig::from_env()?;
        let platform_sip_uris = platform_sip_uris_from_env()?;
        let deletion_queue = queue_url_from_env("DELETION_QUEUE_URL")?;
        let retention = shared::config::event_retention_from_env()?;
        let aws = shared::tls::function_sdk_config().await;
        let mut services =
            Self::new(&aws, &storage, TwilioClient::new(&twilio), default_region_from_env(), platform_sip_uris);
        services.store = services.store.with_event_retention(retention);
        Ok(match deletion_queue {
            Some(url) => services.with_deletions(Queue::built_at_first_send(&aws, url)),
            None => services,
        })
    }

    /// For the functions that delete: fails at init without `DELETION_QUEUE_URL`.
    pub async fn from_env_for_deletion() -> Result<Self, ConfigError> {
        let services = Self::from_env().await?;
        if services.deletions.is_none() {
            return Err(ConfigError::Missing("DELETION_QUEUE_URL"));
        }
        Ok(services)
    }

    pub fn with_deletions(mut self, queue: Queue) -> Self {
        self.deletions = Some(queue);
        self
    }

    pub fn new(
        aws: &aws_config::SdkConfig,
        storage: &StorageConfig,
        twilio: TwilioClient,
        default_region: Region,
        platform_sip_uris: PlatformSipUris,
    ) -> Self {
        let dynamo = aws_sdk_dynamodb::Client::new(aws);
        Self {
            store: ProviderStore::new(dynamo.clone(), storage.table_name.clone()),
            idempotency: IdempotencyStore::new(dynamo, storage.table_name.clone()),
            envelope: Envelope::new(aws_sdk_kms::Client::new(aws), storage.kms_key_id.clone()),
            twilio,
            default_region,
            platform_sip_uris,
            deletions: None,
        }
    }
}

/// Just the table, for functions that read providers without KMS or Twilio.
pub async fn store_from_env() -> Result<ProviderStore, ConfigError> {
    let table_name = table_name_from_env()?;
    let aws = shared::tls::function_sdk_config().await;
    Ok(ProviderStore::new(aws_sdk_dynamodb::Client::new(&aws), table_name))
}
