//! [`Control`], the in-process handle tests use to steer a running emulator:
//! tokens, faults, watch drops, history compaction, statistics and direct
//! object access. The admin HTTP API is a thin layer over the same calls.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::auth::Identity;
use crate::faults::{ErrorRule, Faults, LatencyRule};
use crate::rbac::PRIVILEGED_GROUP;
use crate::state::Shared;
use crate::store::ObjectKey;

/// A cloneable handle on a running emulator.
#[derive(Clone)]
pub struct Control {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control").finish_non_exhaustive()
    }
}

/// A snapshot of the emulator's counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Requests by verb (`get`, `list`, `watch`, `create`, `update`, `patch`,
    /// `delete`, `deletecollection`, `discovery`, `other`).
    pub requests: BTreeMap<String, u64>,
    /// Open watch connections.
    pub open_watches: usize,
    /// Latest resourceVersion.
    pub resource_version: String,
    /// Oldest resourceVersion a watch can resume from.
    pub oldest_resource_version: String,
    /// Changes kept for replay.
    pub history_len: usize,
    /// Stored objects of all types.
    pub objects: usize,
    /// Accepted tokens.
    pub tokens: usize,
    /// Compactions so far (periodic and requested).
    pub compactions: u64,
    /// Watches refused with 410 Expired so far.
    pub expired_watches: u64,
}

impl Control {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Accepts another full-access token.
    pub fn add_token(&self, token: &str) {
        self.add_token_as(token, Identity::admin());
    }

    /// Accepts a token for a named user: full access (`system:masters`), or read-only.
    pub fn add_token_for(&self, token: &str, user: &str, read_only: bool) {
        let identity = if read_only {
            Identity::viewer(user)
        } else {
            Identity::user(user, &[PRIVILEGED_GROUP])
        };
        self.add_token_as(token, identity);
    }

    /// Accepts a token of a ServiceAccount (`system:serviceaccount:<namespace>:<name>`), which may do
    /// what the loaded RBAC manifests grant it, like a token the TokenRequest API issued.
    pub fn add_service_account_token(&self, token: &str, namespace: &str, name: &str) {
        self.add_token_as(token, Identity::service_account(namespace, name));
    }

    /// Accepts a token for any identity.
    pub fn add_token_as(&self, token: &str, identity: Identity) {
        self.shared.tokens_mut().add(token, identity);
    }

    /// Stops accepting a token; returns whether it was accepted.
    pub fn revoke_token(&self, token: &str) -> bool {
        self.shared.tokens_mut().revoke(token)
    }

    /// Replaces all tokens by these full-access ones.
    pub fn replace_tokens(&self, tokens: &[String]) {
        self.shared.tokens_mut().replace(tokens);
    }

    /// The oldest still-accepted full-access token (else any token).
    pub fn first_token(&self) -> Option<String> {
        self.shared.tokens().first().map(str::to_string)
    }

    /// Adds latency to every request.
    pub fn set_latency(&self, latency: Duration) {
        self.set_latency_rule(LatencyRule {
            millis: u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
            verb: None,
        });
    }

    /// Adds latency to requests of one verb (or all, without a verb).
    pub fn set_latency_rule(&self, rule: LatencyRule) {
        self.shared.faults().set_latency(rule);
    }

    /// Injects errors per the rule.
    pub fn inject_errors(&self, rule: ErrorRule) {
        self.shared.faults().errors.push(rule);
    }

    /// Removes every latency and error rule.
    pub fn clear_faults(&self) {
        *self.shared.faults() = Faults::default();
    }

    /// The active faults.
    pub fn faults(&self) -> Faults {
        self.shared.faults().clone()
    }

    /// Closes every open watch connection now; returns how many.
    pub fn drop_watches(&self) -> usize {
        self.shared.state().hub.drop_all()
    }

    /// Closes every currently open watch after `events` more events each.
    pub fn drop_watches_after(&self, events: u64) -> usize {
        self.shared.state().hub.drop_after(events)
    }

    /// Forgets the history: watches and exact lists from any earlier
    /// resourceVersion get 410 Expired. Returns the compaction point.
    pub fn compact_history(&self) -> u64 {
        self.shared.state().store.compact()
    }

    /// Changes how many changes are retained.
    pub fn set_history_limit(&self, limit: usize) {
        self.shared.state().store.set_history_limit(limit);
    }

    /// The latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.state().store.resource_version()
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        let (open_watches, resource_version, oldest, history_len, objects) = {
            let state = self.shared.state();
            (
                state.hub.len(),
                state.store.resource_version(),
                state.store.oldest_available(),
                state.store.history_len(),
                state.store.object_count(),
            )
        };
        let (compactions, expired_watches) = {
            let state = self.shared.state();
            (state.store.compactions(), state.hub.expired_count())
        };
        Stats {
            requests: self.shared.request_counts(),
            open_watches,
            resource_version: resource_version.to_string(),
            oldest_resource_version: oldest.to_string(),
            history_len,
            objects,
            tokens: self.shared.tokens().len(),
            compactions,
            expired_watches,
        }
    }

    /// One stored object (as stored, at the storage version), bypassing the API.
    pub fn object(&self, group: &str, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        let resource = self.shared.registry.find(group, plural)?;
        let state = self.shared.state();
        state
            .store
            .get(resource.id, &ObjectKey::new(namespace, name))
            .map(|o| (**o).clone())
    }

    /// Every stored object of a type, ordered by namespace and name.
    pub fn objects(&self, group: &str, plural: &str) -> Vec<Value> {
        let Some(resource) = self.shared.registry.find(group, plural) else {
            return Vec::new();
        };
        let state = self.shared.state();
        state
            .store
            .list(resource.id)
            .map(|(_, o)| (**o).clone())
            .collect()
    }
}
