//! Creates the table, the KMS key and the queues on the configured endpoints when they
//! are missing, with the same definitions as `template.yaml` (key schema, jobs index, on-demand
//! billing, point-in-time recovery, key rotation, an alias when `KMS_KEY_ID` names one); a table
//! created before the jobs index gets it.

use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;
use aws_sdk_kms::operation::describe_key::DescribeKeyError;
use shared::config::StorageConfig;

type Error = Box<dyn std::error::Error + Send + Sync>;

pub async fn bootstrap(aws: &aws_config::SdkConfig, storage: &StorageConfig) -> Result<(), Error> {
    let dynamo = aws_sdk_dynamodb::Client::new(aws);
    match dynamo.describe_table().table_name(&storage.table_name).send().await {
        Ok(_) => {
            tracing::info!(table = %storage.table_name, "table exists");
            if shared::storage::add_jobs_index(&dynamo, &storage.table_name).await? {
                tracing::info!(table = %storage.table_name, "jobs index added");
            }
        }
        Err(e) if matches!(e.as_service_error(), Some(DescribeTableError::ResourceNotFoundException(_))) => {
            shared::storage::create_table(&dynamo, &storage.table_name).await?;
            tracing::info!(table = %storage.table_name, "table created");
        }
        Err(e) => return Err(Box::new(e)),
    }

    let kms = aws_sdk_kms::Client::new(aws);
    match kms.describe_key().key_id(&storage.kms_key_id).send().await {
        Ok(_) => tracing::info!(key = %storage.kms_key_id, "KMS key exists"),
        Err(e) if matches!(e.as_service_error(), Some(DescribeKeyError::NotFoundException(_))) => {
            let Some(alias) = storage.kms_key_id.strip_prefix("alias/") else {
                return Err(format!(
                    "KMS key {} does not exist; give an alias (alias/NAME) to have one created",
                    storage.kms_key_id
                )
                .into());
            };
            let key = kms
                .create_key()
                .description("Wraps the data keys of the Twilio provider service's secrets.")
                .send()
                .await?;
            let key_id = key.key_metadata.ok_or("KMS returned no key metadata")?.key_id;
            kms.enable_key_rotation().key_id(&key_id).send().await?;
            kms.create_alias().alias_name(format!("alias/{alias}")).target_key_id(&key_id).send().await?;
            tracing::info!(key = %storage.kms_key_id, %key_id, "KMS key created");
        }
        Err(e) => return Err(Box::new(e)),
    }
    Ok(())
}

/// The deletion queue (`{table}-deletions`), created when missing; returns its URL.
pub async fn deletion_queue(aws: &aws_config::SdkConfig, storage: &StorageConfig) -> Result<String, Error> {
    // The template's visibility timeouts: six times the consuming function's timeout.
    queue(aws, &format!("{}-deletions", storage.table_name), 1800).await
}

/// The scheduled jobs' queue (`{table}-jobs`), created when missing; returns its URL.
pub async fn jobs_queue(aws: &aws_config::SdkConfig, storage: &StorageConfig) -> Result<String, Error> {
    queue(aws, &format!("{}-jobs", storage.table_name), 720).await
}

async fn queue(aws: &aws_config::SdkConfig, name: &str, visibility_seconds: u32) -> Result<String, Error> {
    let created = aws_sdk_sqs::Client::new(aws)
        .create_queue()
        .queue_name(name)
        .attributes(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout, visibility_seconds.to_string())
        .send()
        .await?;
    let url = created.queue_url.ok_or("SQS returned no queue URL")?;
    tracing::info!(queue = %url, "queue ready");
    Ok(url)
}
