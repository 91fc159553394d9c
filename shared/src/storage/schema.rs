//! The table's schema, as `template.yaml` declares it, for local stacks and tests.

use super::StoreError;
use super::item::{JOB_PROVIDER_ID, JOBS_INDEX, PK, SK};

/// Creates the table as `template.yaml` declares it: `pk` (hash) and `sk` (range) strings,
/// on-demand billing, TTL on `expiresAt`, point-in-time recovery, deletion protection.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str) -> Result<(), StoreError> {
    use aws_sdk_dynamodb::types::{BillingMode, GlobalSecondaryIndex, KeyType, PointInTimeRecoverySpecification};
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(string_attribute(PK))
        .attribute_definitions(string_attribute(SK))
        .attribute_definitions(string_attribute(JOB_PROVIDER_ID))
        .key_schema(key_element(PK, KeyType::Hash))
        .key_schema(key_element(SK, KeyType::Range))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(JOBS_INDEX)
                .key_schema(key_element(JOB_PROVIDER_ID, KeyType::Hash))
                .projection(jobs_index_projection())
                .build()
                .expect("name, key and projection set"),
        )
        .deletion_protection_enabled(true)
        .send()
        .await
        .map_err(StoreError::request)?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
                .attribute_name(crate::storage::idempotency::TTL_ATTRIBUTE)
                .enabled(true)
                .build()
                .expect("name and flag set"),
        )
        .send()
        .await
        .map_err(StoreError::request)?;
    client
        .update_continuous_backups()
        .table_name(name)
        .point_in_time_recovery_specification(
            PointInTimeRecoverySpecification::builder().point_in_time_recovery_enabled(true).build().expect("flag set"),
        )
        .send()
        .await
        .map_err(StoreError::request)?;
    Ok(())
}

fn string_attribute(name: &str) -> aws_sdk_dynamodb::types::AttributeDefinition {
    aws_sdk_dynamodb::types::AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
        .build()
        .expect("name and type set")
}

fn key_element(name: &str, key_type: aws_sdk_dynamodb::types::KeyType) -> aws_sdk_dynamodb::types::KeySchemaElement {
    aws_sdk_dynamodb::types::KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .expect("name and type set")
}

/// What the jobs index holds beside its key: what the planner reads.
pub(super) fn jobs_index_projection() -> aws_sdk_dynamodb::types::Projection {
    aws_sdk_dynamodb::types::Projection::builder()
        .projection_type(aws_sdk_dynamodb::types::ProjectionType::Include)
        .non_key_attributes("entity")
        .non_key_attributes("organizationId")
        .build()
}

/// Adds the jobs index to a table created before it (`local-api --bootstrap` on an existing
/// table; a deployed stack gets it from template.yaml). Returns whether it had to.
pub async fn add_jobs_index(client: &aws_sdk_dynamodb::Client, name: &str) -> Result<bool, StoreError> {
    use aws_sdk_dynamodb::types::{CreateGlobalSecondaryIndexAction, GlobalSecondaryIndexUpdate, KeyType};
    let table = client.describe_table().table_name(name).send().await.map_err(StoreError::request)?;
    let indexes = table.table.and_then(|t| t.global_secondary_indexes).unwrap_or_default();
    if indexes.iter().any(|index| index.index_name() == Some(JOBS_INDEX)) {
        return Ok(false);
    }
    let create = CreateGlobalSecondaryIndexAction::builder()
        .index_name(JOBS_INDEX)
        .key_schema(key_element(JOB_PROVIDER_ID, KeyType::Hash))
        .projection(jobs_index_projection())
        .build()
        .expect("name, key and projection set");
    client
        .update_table()
        .table_name(name)
        .attribute_definitions(string_attribute(JOB_PROVIDER_ID))
        .global_secondary_index_updates(GlobalSecondaryIndexUpdate::builder().create(create).build())
        .send()
        .await
        .map_err(StoreError::request)?;
    Ok(true)
}
