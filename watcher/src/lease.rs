//! Leader election with a `coordination.k8s.io/v1` Lease: of several replicas, one publishes.
//!
//! The loop follows client-go's lease lock: every `renew_interval` it reads the Lease; the holder
//! renews it, and a contender takes it over when it is free or when its record has not changed for
//! `leaseDurationSeconds` as measured by the contender's own clock (so clock skew between nodes does not
//! matter). Every write is a `replace` carrying the resourceVersion that was read, so of two contenders
//! only one can win. The holder steps down on its own once it could not renew for a lease duration,
//! before anyone else may take over.
//!
//! Crates exist for this (kube-lease-manager supports kube 5) but rely on server-side-apply field
//! ownership conflicts to stop two contenders, which API emulators commonly approximate as a plain
//! merge; a resourceVersion precondition behaves the same everywhere.
//!
//! Exclusivity is an optimisation, not a correctness condition: two publishers at once only produce
//! duplicates with the same CloudEvent ids, never gaps, because checkpoints only move forward.

use std::future::Future;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, PostParams};
use spark_gateway_core::{Classify, Disposition, error_chain};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{info, warn};

/// Which Lease, who we are, and the timing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseSettings {
    /// The Lease's name.
    pub name: String,
    /// The Lease's namespace.
    pub namespace: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// How long a lease stays valid without renewal.
    pub lease_duration: Duration,
    /// How often the Lease is read and renewed or contended for.
    pub renew_interval: Duration,
}

/// A Lease API call that failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} Lease {namespace}/{name}")]
pub struct LeaseError {
    /// `read`, `create` or `update`.
    pub action: &'static str,
    /// The Lease's namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Why.
    #[source]
    pub source: kube::Error,
}

/// By the same table as the watcher's other API calls ([`crate::cluster::kube_error_is_transient`]).
impl Classify for LeaseError {
    fn disposition(&self) -> Disposition {
        Disposition::transient_or_configuration(crate::cluster::kube_error_is_transient(
            &self.source,
        ))
    }
}

/// What to do with a Lease as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseDecision {
    /// We hold it: renew.
    Renew,
    /// It is free or expired: take it.
    Acquire,
    /// Someone else holds it.
    Wait,
}

/// Decides from the Lease's spec and how long its record has been seen unchanged.
pub fn decide(
    spec: &LeaseSpec,
    identity: &str,
    unchanged_for: Duration,
    default_duration: Duration,
) -> LeaseDecision {
    match spec.holder_identity.as_deref() {
        Some(holder) if holder == identity => LeaseDecision::Renew,
        None | Some("") => LeaseDecision::Acquire,
        Some(_) => {
            let duration = spec
                .lease_duration_seconds
                .and_then(|seconds| u64::try_from(seconds).ok())
                .map_or(default_duration, Duration::from_secs);
            if unchanged_for >= duration {
                LeaseDecision::Acquire
            } else {
                LeaseDecision::Wait
            }
        }
    }
}

/// One replica's side of the election.
pub struct Elector {
    api: Api<Lease>,
    settings: LeaseSettings,
    /// The Lease's resourceVersion last seen, and since when (our clock).
    observed: Option<(String, Instant)>,
}

impl Elector {
    /// An elector for `settings`.
    pub fn new(client: Client, settings: LeaseSettings) -> Self {
        Self {
            api: Api::namespaced(client, &settings.namespace),
            settings,
            observed: None,
        }
    }

    fn error(&self, action: &'static str, source: kube::Error) -> LeaseError {
        LeaseError {
            action,
            namespace: self.settings.namespace.clone(),
            name: self.settings.name.clone(),
            source,
        }
    }

    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.settings.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }

    async fn read(&self) -> Result<Option<Lease>, LeaseError> {
        self.api
            .get_opt(&self.settings.name)
            .await
            .map_err(|e| self.error("read", e))
    }

    /// Reads the Lease and renews or acquires it if we may; `Ok(true)` when we hold it afterwards.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, LeaseError> {
        let now = MicroTime(Timestamp::now());
        let Some(mut lease) = self.read().await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.settings.name.clone()),
                    namespace: Some(self.settings.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.settings.identity.clone()),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_duration_seconds: Some(self.duration_seconds()),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                Err(e) => Err(self.error("create", e)),
            };
        };

        let version = lease.metadata.resource_version.clone().unwrap_or_default();
        let unchanged_since = match &self.observed {
            Some((seen, since)) if *seen == version => *since,
            _ => {
                let since = Instant::now();
                self.observed = Some((version, since));
                since
            }
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        match decide(
            &spec,
            &self.settings.identity,
            unchanged_since.elapsed(),
            self.settings.lease_duration,
        ) {
            LeaseDecision::Wait => return Ok(false),
            LeaseDecision::Renew => {
                spec.renew_time = Some(now);
                spec.lease_duration_seconds = Some(self.duration_seconds());
            }
            LeaseDecision::Acquire => {
                spec.holder_identity = Some(self.settings.identity.clone());
                spec.acquire_time = Some(now.clone());
                spec.renew_time = Some(now);
                spec.lease_duration_seconds = Some(self.duration_seconds());
                spec.lease_transitions =
                    Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
            }
        }
        lease.spec = Some(spec);
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            // Someone else wrote first: not ours (or no longer ours); look again next round.
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(e) => Err(self.error("update", e)),
        }
    }

    /// Gives the Lease up if we hold it, so another replica takes over at once.
    pub async fn release(&mut self) -> Result<(), LeaseError> {
        let Some(mut lease) = self.read().await? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
            Err(e) => Err(self.error("update", e)),
        }
    }

    /// Campaigns until `stop` completes, sending `true` on `leading` while this replica holds the
    /// Lease and `false` otherwise; releases the Lease on the way out.
    pub async fn run(mut self, leading: watch::Sender<bool>, stop: impl Future<Output = ()>) {
        let mut ticker = tokio::time::interval(self.settings.renew_interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut valid_until: Option<Instant> = None;
        tokio::pin!(stop);
        loop {
            tokio::select! {
                biased;
                () = &mut stop => break,
                _ = ticker.tick() => {}
            }
            let attempt_started = Instant::now();
            // A hung call must not keep us leading unchecked: it counts as a failed round.
            let outcome =
                tokio::time::timeout(self.settings.renew_interval, self.try_acquire_or_renew())
                    .await;
            match outcome {
                Ok(Ok(true)) => valid_until = Some(attempt_started + self.settings.lease_duration),
                Ok(Ok(false)) => valid_until = None,
                Ok(Err(error)) => {
                    warn!(error = %error_chain(&error), transient = error.disposition().is_transient(), "lease round failed")
                }
                Err(_) => warn!("lease round timed out"),
            }
            // Step down a round before the lease could expire in anyone else's eyes.
            if valid_until
                .is_some_and(|until| Instant::now() + self.settings.renew_interval >= until)
            {
                valid_until = None;
            }
            let now_leading = valid_until.is_some();
            if *leading.borrow() != now_leading {
                info!(identity = %self.settings.identity, leading = now_leading, "leadership changed");
                leading.send_replace(now_leading);
            }
        }
        if *leading.borrow() {
            leading.send_replace(false);
            if let Err(error) = self.release().await {
                warn!(error = %error_chain(&error), "could not release the lease");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DURATION: Duration = Duration::from_secs(15);

    fn held_by(holder: Option<&str>, seconds: Option<i32>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_string),
            lease_duration_seconds: seconds,
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn the_holder_renews() {
        assert_eq!(
            decide(&held_by(Some("a"), Some(15)), "a", Duration::ZERO, DURATION),
            LeaseDecision::Renew
        );
    }

    #[test]
    fn a_free_lease_is_taken() {
        assert_eq!(
            decide(&held_by(None, None), "a", Duration::ZERO, DURATION),
            LeaseDecision::Acquire
        );
        assert_eq!(
            decide(&held_by(Some(""), Some(1)), "a", Duration::ZERO, DURATION),
            LeaseDecision::Acquire
        );
    }

    #[test]
    fn another_holder_is_waited_for_until_its_record_went_stale() {
        let spec = held_by(Some("b"), Some(10));
        assert_eq!(
            decide(&spec, "a", Duration::from_secs(9), DURATION),
            LeaseDecision::Wait
        );
        assert_eq!(
            decide(&spec, "a", Duration::from_secs(10), DURATION),
            LeaseDecision::Acquire
        );
        // Without a duration in the Lease, ours applies.
        let spec = held_by(Some("b"), None);
        assert_eq!(
            decide(&spec, "a", Duration::from_secs(10), DURATION),
            LeaseDecision::Wait
        );
    }

    #[test]
    fn lease_errors_name_the_lease_and_keep_the_cause() {
        let error = LeaseError {
            action: "read",
            namespace: "ns".into(),
            name: "l".into(),
            source: kube::Error::LinesCodecMaxLineLengthExceeded,
        };
        assert_eq!(
            error_chain(&error),
            "cannot read Lease ns/l: Error finding newline character"
        );
    }
}
