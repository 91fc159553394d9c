//! Imported phone numbers, their claims and reservations.

use super::item::{
    Fields, Item, Transaction, TransactionFailure, n, number_claim_key, number_sort_key, numbers_prefix, org_key,
    provider_sort_key, put_new, s, secret,
};
use super::{
    IntentKey, ProviderStore, StoreError, condition_held, decode_page_token, encode_page_token, epoch_seconds,
};
use crate::audit::AuditEvent;
use crate::crypto::EncryptedSecret;
use crate::model::{OrganizationId, PhoneNumberSid, VoiceRouting};
use crate::time::Timestamp;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use uuid::Uuid;

/// A phone number imported onto a provider's trunk, with the routing it had before.
#[derive(Debug, Clone, PartialEq)]
pub struct PhoneNumberRecord {
    pub id: Uuid,
    pub provider_id: Uuid,
    pub phone_number_sid: PhoneNumberSid,
    pub phone_number: String,
    pub friendly_name: Option<String>,
    /// The voice configuration before import, URLs masked (safe to show and store in plain).
    pub previous_routing: VoiceRouting,
    /// The exact voice configuration before import, envelope-encrypted (JSON of
    /// [`VoiceRouting`]); absent when it has no URL, as the masked one is then exact.
    pub previous_routing_sealed: Option<EncryptedSecret>,
    pub imported_at: Timestamp,
}

impl PhoneNumberRecord {
    pub(super) fn key(&self, org: &OrganizationId) -> Item {
        org_key(org, number_sort_key(self.provider_id, self.id))
    }

    pub(super) fn to_item(&self, org: &OrganizationId) -> Item {
        let mut item = self.key(org);
        item.extend([
            ("entity".to_owned(), s("phoneNumber")),
            ("id".to_owned(), s(self.id.to_string())),
            ("providerId".to_owned(), s(self.provider_id.to_string())),
            ("phoneNumberSid".to_owned(), s(self.phone_number_sid.as_str())),
            ("phoneNumber".to_owned(), s(self.phone_number.clone())),
            ("importedAt".to_owned(), s(self.imported_at.clone())),
        ]);
        if let Some(name) = &self.friendly_name {
            item.insert("friendlyName".to_owned(), s(name.clone()));
        }
        let routing = serde_json::to_string(&self.previous_routing).expect("routing serializes");
        item.insert("previousRouting".to_owned(), s(routing));
        if let Some(sealed) = &self.previous_routing_sealed {
            item.insert("previousRoutingSealed".to_owned(), secret(sealed));
        }
        item
    }

    pub(super) fn from_item(item: &Item) -> Result<Self, StoreError> {
        let f = Fields(item);
        Ok(Self {
            id: f.uuid("id")?,
            provider_id: f.uuid("providerId")?,
            phone_number_sid: f.parsed("phoneNumberSid", PhoneNumberSid::parse)?,
            phone_number: f.string("phoneNumber")?,
            friendly_name: f.opt_string("friendlyName")?,
            previous_routing: f.json("previousRouting")?.unwrap_or_default(),
            previous_routing_sealed: f.opt_secret("previousRoutingSealed")?,
            imported_at: f.timestamp("importedAt")?,
        })
    }
}

/// The items of a number transaction.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum NumberPart {
    Number,
    Claim,
    /// The provider's `phoneNumberCount` (and version).
    ProviderCount,
    Intent,
    Event,
}

/// Where a number stands among imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberClaim {
    Free,
    /// An import of it is under way.
    Reserved,
    /// Imported into this provider.
    Claimed {
        provider_id: Uuid,
    },
}

/// How long a number's reservation holds an import's place: well past the longest import
/// invocation (29 s), short enough that an import that died midway frees the number soon.
pub const RESERVATION: std::time::Duration = std::time::Duration::from_secs(120);

impl ProviderStore {
    /// Likewise for a `nextToken` of a provider's numbers.
    pub fn check_numbers_page_token(
        &self,
        org: &OrganizationId,
        provider_id: Uuid,
        token: &str,
    ) -> Result<(), StoreError> {
        decode_page_token(org, &numbers_prefix(provider_id), token).map(drop)
    }

    /// The page token of a provider's numbers that starts after `number`.
    pub fn numbers_after(&self, org: &OrganizationId, number: &PhoneNumberRecord) -> String {
        encode_page_token(org, &number_sort_key(number.provider_id, number.id))
    }

    /// A provider's imported numbers, oldest first, `limit` at a time.
    pub async fn list_numbers(
        &self,
        org: &OrganizationId,
        provider_id: Uuid,
        limit: i32,
        page_token: Option<&str>,
    ) -> Result<(Vec<PhoneNumberRecord>, Option<String>), StoreError> {
        let (items, next) = self.query_page(org, &numbers_prefix(provider_id), true, limit, page_token).await?;
        Ok((items.iter().map(PhoneNumberRecord::from_item).collect::<Result<_, _>>()?, next))
    }

    /// Every imported number of a provider.
    pub async fn all_numbers(
        &self,
        org: &OrganizationId,
        provider_id: Uuid,
    ) -> Result<Vec<PhoneNumberRecord>, StoreError> {
        let mut numbers = Vec::new();
        let mut token = None;
        loop {
            let (page, next) = self.list_numbers(org, provider_id, 100, token.as_deref()).await?;
            numbers.extend(page);
            match next {
                Some(next) => token = Some(next),
                None => return Ok(numbers),
            }
        }
    }

    /// Deletes numbers' records and claims, in batches, leaving the provider's count as it is:
    /// for a provider being force-deleted, once what they leave is recorded for the sweeper.
    pub async fn forget_numbers(&self, org: &OrganizationId, numbers: &[PhoneNumberRecord]) -> Result<(), StoreError> {
        let number_keys: Vec<Item> =
            numbers.iter().flat_map(|n| [n.key(org), number_claim_key(&n.phone_number_sid)]).collect();
        let deletes = number_keys
            .into_iter()
            .map(|key| {
                let delete =
                    aws_sdk_dynamodb::types::DeleteRequest::builder().set_key(Some(key)).build().expect("key set");
                aws_sdk_dynamodb::types::WriteRequest::builder().delete_request(delete).build()
            })
            .collect();
        self.batch_write(deletes).await
    }

    /// Whether a number is imported into a provider (of any organization), or an import of it
    /// is under way (a reservation that has not lapsed).
    pub async fn number_claim(&self, phone_number_sid: &PhoneNumberSid) -> Result<NumberClaim, StoreError> {
        let Some(claim) = self.get_item(number_claim_key(phone_number_sid)).await? else {
            return Ok(NumberClaim::Free);
        };
        let f = Fields(&claim);
        Ok(match f.opt_number::<u64>("pendingUntil")? {
            None => NumberClaim::Claimed { provider_id: f.uuid("providerId")? },
            Some(until) if until >= epoch_seconds() => NumberClaim::Reserved,
            Some(_) => NumberClaim::Free,
        })
    }

    /// Reserves a number for an import before anything is done in Twilio, so that of two
    /// imports of one number (two organizations may connect one Twilio account) the loser never
    /// touches it. The reservation lapses after [`RESERVATION`] (an import that died midway
    /// does not hold the number for ever); [`Self::insert_number`] turns it into the claim.
    /// Returns the reservation's id, which only its holder gives up; `NumberTaken` when the
    /// number is imported or reserved already.
    pub async fn reserve_number(
        &self,
        org: &OrganizationId,
        provider_id: Uuid,
        phone_number_sid: &PhoneNumberSid,
    ) -> Result<Uuid, StoreError> {
        let now = epoch_seconds();
        let reservation = Uuid::now_v7();
        let mut claim = number_claim_key(phone_number_sid);
        claim.extend([
            ("entity".to_owned(), s("numberClaim")),
            ("organizationId".to_owned(), s(org.as_str())),
            ("providerId".to_owned(), s(provider_id.to_string())),
            ("reservationId".to_owned(), s(reservation.to_string())),
            ("pendingUntil".to_owned(), n(now + RESERVATION.as_secs())),
            // Lapsed reservations are removed by the table's TTL, in time.
            ("expiresAt".to_owned(), n(now + RESERVATION.as_secs())),
        ]);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(claim))
            .condition_expression("attribute_not_exists(pk) OR pendingUntil < :now")
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        if condition_held(result)? { Ok(reservation) } else { Err(StoreError::NumberTaken) }
    }

    /// Gives up a reservation (the import did not happen): this one only, never one another
    /// import of the number holds since.
    pub async fn cancel_reservation(
        &self,
        phone_number_sid: &PhoneNumberSid,
        reservation: Uuid,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(number_claim_key(phone_number_sid)))
            .condition_expression("reservationId = :reservation AND attribute_exists(pendingUntil)")
            .expression_attribute_values(":reservation", s(reservation.to_string()))
            .send()
            .await;
        // Refused: lapsed and taken by another import, or already turned into the claim; not ours.
        condition_held(result).map(drop)
    }

    pub async fn get_number(
        &self,
        org: &OrganizationId,
        provider_id: Uuid,
        number_id: Uuid,
    ) -> Result<Option<PhoneNumberRecord>, StoreError> {
        self.get_item(org_key(org, number_sort_key(provider_id, number_id)))
            .await?
            .as_ref()
            .map(PhoneNumberRecord::from_item)
            .transpose()
    }

    /// Stores an imported number, turns the provider's reservation of it into its claim,
    /// increments the provider's `phoneNumberCount` (and version) and removes the import's
    /// intent, all in one transaction. `NumberTaken` when the reservation is no longer this
    /// provider's.
    pub async fn insert_number(
        &self,
        org: &OrganizationId,
        number: &PhoneNumberRecord,
        intent: Option<&IntentKey>,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut claim = number_claim_key(&number.phone_number_sid);
        claim.insert("entity".to_owned(), s("numberClaim"));
        claim.insert("organizationId".to_owned(), s(org.as_str()));
        claim.insert("providerId".to_owned(), s(number.provider_id.to_string()));
        let claim = Put::builder()
            .table_name(&self.table)
            .set_item(Some(claim))
            .condition_expression("providerId = :provider AND attribute_exists(pendingUntil)")
            .expression_attribute_values(":provider", s(number.provider_id.to_string()))
            .build()
            .expect("table and item set");
        let transaction = Transaction::new()
            .with(NumberPart::Number, put_new(&self.table, number.to_item(org)))
            .with(NumberPart::Claim, TransactWriteItem::builder().put(claim).build())
            .with(NumberPart::ProviderCount, self.count_update(org, number.provider_id, 1, false))
            .with_some(NumberPart::Intent, intent.map(|key| key.done(&self.table)))
            .with(NumberPart::Event, self.event_put(event));
        let failure = match self.transact_number_change(transaction, StoreError::NumberTaken).await {
            Ok(()) => return Ok(()),
            Err(failure) => failure,
        };
        if self.written_after_all(org_key(org, number_sort_key(number.provider_id, number.id))).await {
            return Ok(());
        }
        Err(failure)
    }

    /// Deletes an imported number and its claim, decrements the provider's count and removes
    /// the removal's intent; refused (`ProviderGone`) once the provider is being deleted.
    pub async fn remove_number(
        &self,
        org: &OrganizationId,
        number: &PhoneNumberRecord,
        intent: &IntentKey,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        self.delete_number(org, number, false, Some(intent), event).await
    }

    /// The same for a provider being deleted: each number's records go as soon as it is given
    /// back, so a resumed delete never redoes it.
    pub async fn forget_given_back_number(
        &self,
        org: &OrganizationId,
        number: &PhoneNumberRecord,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        self.delete_number(org, number, true, None, event).await
    }

    pub(super) async fn delete_number(
        &self,
        org: &OrganizationId,
        number: &PhoneNumberRecord,
        while_deleting: bool,
        intent: Option<&IntentKey>,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let delete = |key: Item, condition: Option<&str>| {
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key))
                .set_condition_expression(condition.map(str::to_owned))
                .build()
                .expect("key set");
            TransactWriteItem::builder().delete(delete).build()
        };
        let transaction = Transaction::new()
            .with(NumberPart::Number, delete(number.key(org), Some("attribute_exists(pk)")))
            .with(NumberPart::Claim, delete(number_claim_key(&number.phone_number_sid), None))
            .with(NumberPart::ProviderCount, self.count_update(org, number.provider_id, -1, while_deleting))
            .with_some(NumberPart::Intent, intent.map(|key| key.done(&self.table)))
            .with(NumberPart::Event, self.event_put(event));
        self.transact_number_change(transaction, StoreError::NumberGone).await
    }

    pub(super) fn count_update(
        &self,
        org: &OrganizationId,
        provider_id: Uuid,
        delta: i64,
        while_deleting: bool,
    ) -> TransactWriteItem {
        let condition = if while_deleting {
            "attribute_exists(pk)"
        } else {
            "attribute_exists(pk) AND attribute_not_exists(deletionStartedAt)"
        };
        let update = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.table)
            .set_key(Some(org_key(org, provider_sort_key(provider_id))))
            .update_expression("SET phoneNumberCount = phoneNumberCount + :delta, version = version + :one")
            .condition_expression(condition)
            .expression_attribute_values(":delta", n(delta))
            .expression_attribute_values(":one", n(1))
            .build()
            .expect("table, key and expression set");
        TransactWriteItem::builder().update(update).build()
    }

    /// Runs a number transaction: a failed condition on the provider's count is
    /// `ProviderGone`, on the number or its claim `on_item_conflict`. A transaction that
    /// DynamoDB cancelled because another one was writing the same item (the provider's count,
    /// under concurrent imports) is retried with jittered backoff within the deadline.
    pub(super) async fn transact_number_change(
        &self,
        transaction: Transaction<NumberPart>,
        on_item_conflict: StoreError,
    ) -> Result<(), StoreError> {
        let why = match transaction.send(&self.client).await {
            Ok(()) => return Ok(()),
            Err(TransactionFailure::Request(e)) => return Err(e),
            Err(TransactionFailure::Cancelled(why)) => why,
        };
        if why.condition_failed(NumberPart::ProviderCount) {
            return Err(StoreError::ProviderGone);
        }
        if why.condition_failed(NumberPart::Number) || why.condition_failed(NumberPart::Claim) {
            return Err(on_item_conflict);
        }
        Err(why.into())
    }
}
