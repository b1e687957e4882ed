//! The state shared by every connection, the admin API and the [`Control`]
//! handle: the registry, the store with its watch hub (one lock, so changes
//! and their fan-out are atomic), tokens, faults and request counters.
//!
//! [`Control`]: crate::Control

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::auth::Tokens;
use crate::faults::Faults;
use crate::rbac::Policy;
use crate::resources::Registry;
use crate::store::{Change, Store};
use crate::watch::WatchHub;

/// The store and the watchers it feeds.
pub struct State {
    /// Objects and history.
    pub store: Store,
    /// Open watches.
    pub hub: WatchHub,
}

impl State {
    /// Records a change for watchers (call right after each store write).
    pub fn publish(&mut self, change: &Arc<Change>) {
        self.hub.publish(change);
    }
}

/// Runtime settings fixed at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Per-watcher event buffer before a slow watcher is closed.
    pub watch_buffer: usize,
    /// Server-side watch timeouts, when the configuration asks for them.
    pub watch_timeouts: Option<crate::watch::WatchTimeouts>,
    /// Where `pods/log` reads logs (see `EmulatorConfig::pod_log_dir`).
    pub pod_log_dir: Option<std::path::PathBuf>,
}

/// Everything the request handlers share.
pub struct Shared {
    /// Served resource types.
    pub registry: Arc<Registry>,
    state: Mutex<State>,
    tokens: RwLock<Tokens>,
    faults: Mutex<Faults>,
    request_counts: Mutex<BTreeMap<String, u64>>,
    /// Fixed settings.
    pub settings: Settings,
    /// Roles and bindings every request is authorized against.
    pub rbac: Policy,
}

impl Shared {
    /// Assembles the shared state.
    pub fn new(
        registry: Registry,
        store: Store,
        tokens: Tokens,
        settings: Settings,
        rbac: Policy,
    ) -> Self {
        Self {
            registry: Arc::new(registry),
            state: Mutex::new(State {
                store,
                hub: WatchHub::default(),
            }),
            tokens: RwLock::new(tokens),
            faults: Mutex::new(Faults::default()),
            request_counts: Mutex::new(BTreeMap::new()),
            settings,
            rbac,
        }
    }

    /// Locks the store and hub. Never held across an await.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the tokens.
    pub fn tokens(&self) -> RwLockReadGuard<'_, Tokens> {
        self.tokens.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the tokens.
    pub fn tokens_mut(&self) -> RwLockWriteGuard<'_, Tokens> {
        self.tokens.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Locks the faults.
    pub fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one request of a verb.
    pub fn count_request(&self, verb: &str) {
        let mut counts = self
            .request_counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *counts.entry(verb.to_string()).or_default() += 1;
    }

    /// Requests served so far, by verb.
    pub fn request_counts(&self) -> BTreeMap<String, u64> {
        self.request_counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
