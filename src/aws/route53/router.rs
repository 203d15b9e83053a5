//! The Route 53 router: two weighted records, slot A's and slot B's.

use super::*;

/// The Route 53 router.
#[derive(Debug, Clone)]
pub struct Route53Router {
    zone: Zone,
    name: String,
    rtype: RrType,
    ids: [String; 2],
}

impl Route53Router {
    /// A router over the weighted records `ids` (slot A, B) of `name`/`rtype` in `zone`.
    pub fn new(
        aws: &Aws,
        zone: String,
        name: &str,
        rtype: &str,
        ids: [String; 2],
    ) -> Route53Router {
        Route53Router {
            zone: Zone {
                client: Client::new(&aws.sdk),
                calls: aws.calls.clone(),
                zone,
            },
            name: fqdn(name),
            rtype: RrType::from(rtype),
            ids,
        }
    }

    /// The two slot records, A then B.
    async fn slots(&self) -> Result<[ResourceRecordSet; 2], PortError> {
        let records = self.zone.records(&self.name, &self.rtype).await?;
        let find = |id: &str| {
            records
                .iter()
                .find(|r| r.set_identifier.as_deref() == Some(id))
                .cloned()
                .ok_or_else(|| {
                    PortError::new(
                        "ListResourceRecordSets",
                        ErrorKind::NotFound,
                        format!(
                            "no weighted {} record {} with set identifier {id:?} in zone {}",
                            self.rtype, self.name, self.zone.zone
                        ),
                    )
                })
        };
        Ok([find(&self.ids[0])?, find(&self.ids[1])?])
    }
}

#[async_trait]
impl Router for Route53Router {
    async fn preflight(&self, plan: &crate::engine::Plan) -> Checks {
        match self.slots().await {
            Ok([a, b]) if a.weight.is_none() || b.weight.is_none() => {
                Checks::problems(vec![format!(
                    "router: the records {} are not weighted records",
                    self.name
                )])
            }
            Ok(records) => {
                // Resolvers cache answers for the TTL: a shorter bake judges
                // green on traffic that mostly never reached it.
                let ttl_ms = records
                    .iter()
                    .filter_map(|r| r.ttl)
                    .max()
                    .unwrap_or(0)
                    .max(0) as u64
                    * 1000;
                let shortest = plan
                    .steps
                    .iter()
                    .filter(|s| s.weight < 100)
                    .map(|s| s.bake_ms)
                    .min();
                let warnings = match shortest {
                    Some(bake) if bake < ttl_ms => vec![format!(
                        "a bake of {} is shorter than the TTL of {} ({}): clients keep the old answer that long",
                        crate::model::fmt_ms(bake),
                        self.name,
                        crate::model::fmt_ms(ttl_ms)
                    )],
                    _ => vec![],
                };
                Checks {
                    warnings,
                    ..Checks::default()
                }
            }
            Err(e) if e.is_transient() => Checks::unread(e),
            Err(e) if e.message.starts_with("router.") => Checks::problems(vec![e.message]),
            Err(e) => Checks::problems(vec![format!("router.set_identifiers: {}", e.message)]),
        }
    }

    async fn weights(&self) -> Result<SlotWeights, PortError> {
        let [a, b] = self.slots().await?;
        let a_pct = from_r53(a.weight.unwrap_or(0), b.weight.unwrap_or(0)).ok_or_else(|| {
            PortError::new(
                "router.weights",
                ErrorKind::Invalid,
                format!("both records of {} have weight 0", self.name),
            )
        })?;
        Ok(SlotWeights {
            a: a_pct,
            b: 100 - a_pct,
        })
    }

    async fn set_weights(&self, w: SlotWeights) -> Result<(), PortError> {
        // All traffic to one slot (a rollback above all) does not queue
        // behind other services' reads in a release.
        match w.full_slot() {
            Some(_) => crate::aws::pace::urgent(self.write_weights(w)).await,
            None => self.write_weights(w).await,
        }
    }
}

impl Route53Router {
    /// Both records rewritten with `w`, in one change batch.
    async fn write_weights(&self, w: SlotWeights) -> Result<(), PortError> {
        if !w.is_valid() {
            return Err(PortError::new(
                "router.set_weights",
                ErrorKind::Invalid,
                format!("invalid weights {w}"),
            ));
        }
        let records = self.slots().await?;
        let changes = Slot::BOTH
            .into_iter()
            .map(|s| {
                let mut r = records[s.index()].clone();
                r.weight = Some(to_r53(w.get(s)));
                change(ChangeAction::Upsert, r)
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.zone.change(changes).await
    }
}
