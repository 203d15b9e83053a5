//! The deployment record in a DynamoDB table: the ledger of ALB routers.
//!
//! One item per router, keyed by the ARN of the listener or rule that splits
//! the traffic (`id`), so two configs that name one listener exclude each
//! other whatever their service names. The item holds the record as JSON
//! (`record`) and its version (`version`, a number).
//!
//! Every store is one conditional `PutItem`: `attribute_not_exists(id)` for
//! the first record of a router, `version = :read` after that. DynamoDB
//! evaluates the condition and writes atomically, so of two processes that
//! read the same version and write, exactly one wins and the other gets
//! `ConditionalCheckFailedException` ([`ErrorKind::Conflict`]) having changed
//! nothing. This is what ELBv2 tags could not give (they have no conditional
//! write): two `teal deploy` started at one instant both saw a free listener
//! and both wrote.
//!
//! Reads are strongly consistent (`ConsistentRead`), so a read after a write
//! from any machine sees it. Costs: one read and at most one write per poll;
//! an on-demand table idles at no cost. IAM: `dynamodb:GetItem` and
//! `dynamodb:PutItem` on the table.

use crate::aws::{ApiCalls, Aws};
use crate::aws_call;
use crate::engine::Record;
use crate::ports::{ErrorKind, Ledger, PortError};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use std::sync::Arc;

/// The ledger as one item of a DynamoDB table.
#[derive(Debug, Clone)]
pub struct TableLedger {
    client: Client,
    calls: Arc<ApiCalls>,
    table: String,
    key: String,
}

impl TableLedger {
    /// The record of the router `key` (a listener or rule ARN) in `table`.
    pub fn new(aws: &Aws, table: String, key: String) -> TableLedger {
        TableLedger {
            client: Client::new(&aws.sdk),
            calls: aws.calls.clone(),
            table,
            key,
        }
    }

    /// What to do when the table is missing or has another shape: the
    /// command that creates it as teal expects.
    fn create_hint(&self) -> String {
        format!(
            "create it with `aws dynamodb create-table --table-name {} \
             --attribute-definitions AttributeName=id,AttributeType=S \
             --key-schema AttributeName=id,KeyType=HASH --billing-mode PAY_PER_REQUEST` \
             (or the LedgerTable of examples/codepipeline/prerequisites.yml)",
            self.table
        )
    }

    /// An error that names the table and, where it helps, how to fix it.
    fn explain(&self, mut e: PortError) -> PortError {
        if e.message.contains("ConditionalCheckFailed") {
            e.kind = ErrorKind::Conflict;
            e.message = format!("the record of {} changed meanwhile", self.key);
        } else if e.message.contains("ResourceNotFound") {
            e.kind = ErrorKind::NotFound;
            e.message = format!(
                "ledger.table: the DynamoDB table {:?} (where teal keeps the deployment record of an ALB router) does not exist; {}",
                self.table,
                self.create_hint()
            );
        } else if e.message.contains("ValidationException") {
            e.message = format!(
                "ledger.table: the DynamoDB table {:?} does not take teal's items ({}); its key must be one string attribute `id`: {}",
                self.table,
                e.message,
                self.create_hint()
            );
        } else if e.kind == ErrorKind::Denied {
            e.message = format!(
                "ledger.table: not allowed to use the DynamoDB table {:?} ({}); the role needs dynamodb:GetItem and dynamodb:PutItem on it",
                self.table, e.message
            );
        }
        e
    }
}

fn corrupt(m: impl Into<String>) -> PortError {
    PortError::new("ledger.load", ErrorKind::Invalid, m)
}

#[async_trait]
impl Ledger for TableLedger {
    async fn load(&self) -> Result<Option<Record>, PortError> {
        let out = aws_call!(
            self.calls,
            "GetItem",
            self.client
                .get_item()
                .table_name(&self.table)
                .key("id", AttributeValue::S(self.key.clone()))
                .consistent_read(true)
                .send()
        )
        .map_err(|e| self.explain(e))?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let version = match item.get("version") {
            Some(AttributeValue::N(n)) => n
                .parse::<u64>()
                .map_err(|_| corrupt(format!("ledger version {n:?} is not a number")))?,
            _ => return Err(corrupt("the ledger item has no version")),
        };
        let json = match item.get("record") {
            Some(AttributeValue::S(s)) => s,
            _ => return Err(corrupt("the ledger item has no record")),
        };
        let mut rec: Record = serde_json::from_str(json)
            .map_err(|e| corrupt(format!("the ledger record does not parse: {e}")))?;
        rec.version = version;
        Ok(Some(rec))
    }

    async fn store(&self, record: &Record) -> Result<u64, PortError> {
        let next = record.version + 1;
        let json = serde_json::to_string(record)
            .map_err(|e| PortError::new("ledger.store", ErrorKind::Invalid, e.to_string()))?;
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("id", AttributeValue::S(self.key.clone()))
            .item("version", AttributeValue::N(next.to_string()))
            .item("service", AttributeValue::S(record.service.clone()))
            .item("deployment", AttributeValue::S(record.id.clone()))
            .item("record", AttributeValue::S(json));
        let put = match record.version {
            0 => put.condition_expression("attribute_not_exists(id)"),
            v => put
                .condition_expression("#v = :v")
                .expression_attribute_names("#v", "version")
                .expression_attribute_values(":v", AttributeValue::N(v.to_string())),
        };
        aws_call!(self.calls, "PutItem", put.send()).map_err(|e| self.explain(e))?;
        Ok(next)
    }
}
