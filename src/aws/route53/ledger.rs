//! The Route 53 ledger: the record in a TXT record beside the weighted ones,
//! replaced by a compare-and-set change batch.

use super::*;

/// The ledger in a TXT record beside the weighted records.
#[derive(Debug, Clone)]
pub struct TxtLedger {
    zone: Zone,
    name: String,
}

impl TxtLedger {
    /// A ledger at `_teal.NAME` in `zone`.
    pub fn new(aws: &Aws, zone: String, record_name: &str) -> TxtLedger {
        TxtLedger {
            zone: Zone {
                client: Client::new(&aws.sdk),
                calls: aws.calls.clone(),
                zone,
            },
            name: fqdn(&format!("_teal.{}", record_name.trim_end_matches('.'))),
        }
    }

    async fn current(&self) -> Result<Option<ResourceRecordSet>, PortError> {
        Ok(self
            .zone
            .records(&self.name, &RrType::Txt)
            .await?
            .into_iter()
            .next())
    }
}

fn decode(rrs: &ResourceRecordSet) -> Result<Record, PortError> {
    let corrupt = |m: String| PortError::new("ledger.load", ErrorKind::Invalid, m);
    let strings: Vec<String> = rrs
        .resource_records()
        .first()
        .map(|r| {
            r.value()
                .split('"')
                .filter(|s| !s.trim().is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let (head, chunks) = strings
        .split_first()
        .ok_or_else(|| corrupt("empty ledger record".into()))?;
    let version: u64 = head
        .strip_prefix("teal v=")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| corrupt(format!("bad ledger header {head:?}")))?;
    let mut rec = Record::unpack(&chunks.concat()).map_err(corrupt)?;
    rec.version = version;
    Ok(rec)
}

fn encode(name: &str, rec: &Record, version: u64) -> Result<ResourceRecordSet, PortError> {
    let b64 = rec.pack();
    let mut value = format!("\"teal v={version}\"");
    for chunk in b64.as_bytes().chunks(255) {
        value.push_str(&format!(
            " \"{}\"",
            std::str::from_utf8(chunk).expect("base64 is ASCII")
        ));
    }
    let invalid = |e: aws_smithy_types::error::operation::BuildError| {
        PortError::new("ledger.store", ErrorKind::Invalid, e.to_string())
    };
    ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::Txt)
        .ttl(60)
        .resource_records(
            ResourceRecord::builder()
                .value(value)
                .build()
                .map_err(invalid)?,
        )
        .build()
        .map_err(invalid)
}

#[async_trait]
impl Ledger for TxtLedger {
    async fn load(&self) -> Result<Option<Record>, PortError> {
        self.current().await?.as_ref().map(decode).transpose()
    }

    async fn store(&self, record: &Record) -> Result<u64, PortError> {
        let current = self.current().await?;
        let version = match &current {
            Some(rrs) => decode(rrs)?.version,
            None => 0,
        };
        if version != record.version {
            return Err(PortError::new(
                "ledger.store",
                ErrorKind::Conflict,
                format!("record is at version {version}, not {}", record.version),
            ));
        }
        let next = version + 1;
        let mut changes = Vec::new();
        if let Some(old) = current {
            // Deleting the exact value read makes the batch fail if it changed meanwhile.
            changes.push(change(ChangeAction::Delete, old)?);
        }
        changes.push(change(
            ChangeAction::Create,
            encode(&self.name, record, next)?,
        )?);
        match self.zone.change(changes).await {
            Ok(()) => Ok(next),
            Err(e)
                if e.kind == ErrorKind::Invalid
                    && (e.message.contains("InvalidChangeBatch")
                        || e.message.contains("not found")) =>
            {
                Err(PortError::new(
                    "ledger.store",
                    ErrorKind::Conflict,
                    format!("the ledger record changed meanwhile ({})", e.message),
                ))
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;

    #[test]
    fn a_record_with_the_most_analysis_metrics_fits_a_txt_record() {
        // Route 53: a TXT value holds at most 4,000 characters (16 metrics: about 2,000).
        let rec = crate::engine::sample_judged_record(None, crate::config::MAX_METRICS_IN_TXT);
        let set = encode("_teal.web.example.com.", &rec, 7).unwrap();
        let value = set.resource_records()[0].value();
        assert!(value.len() <= 4000, "{} characters", value.len());
        let rec = crate::engine::sample_judged_record(None, 40);
        let too_big = encode("_teal.web.example.com.", &rec, 7)
            .unwrap()
            .resource_records()[0]
            .value()
            .len();
        assert!(
            too_big > value.len(),
            "more metrics, a longer record ({too_big})"
        );
    }
}
