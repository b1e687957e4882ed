//! An in-memory [`ClusterApi`] for unit tests of the gateway's decisions and of what drives it (the
//! status function). It answers as the Kubernetes API server does for the calls the gateway makes:
//! a create of a taken name is `409 AlreadyExists`; a dry-run create stores nothing; a delete whose uid
//! precondition does not match is `409 Conflict` and one of a missing object `404` (which kube's
//! `delete` reports as nothing to delete); every stored object gets a fresh `metadata.uid`. Failures
//! can be scripted per call, so every error class reaches the gateway's classification. Compiled only
//! with the `fake` feature.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use serde_json::{Value, json};
use spark_gateway_core::labels::REQUEST_ID_LABEL;

use crate::cluster::{ClusterApi, ClusterError, Deletion};
use crate::config::ClusterConfig;

/// A call of the [`ClusterApi`], for scripting failures and reading what happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `create` (dry run or not).
    Create,
    /// `get`.
    Get,
    /// `find_by_request_id` (a list by label).
    Find,
    /// `delete`.
    Delete,
}

#[derive(Default)]
struct State {
    objects: BTreeMap<(String, String), Value>,
    next_uid: u64,
    failures: VecDeque<(Call, ClusterError)>,
    calls: Vec<Call>,
}

/// SparkApplications in memory, one cluster's worth (the cluster name is not part of the key).
#[derive(Default)]
pub struct FakeCluster {
    state: Mutex<State>,
}

impl FakeCluster {
    /// Stores `object` as it is (a pre-existing application, e.g. one the gateway did not create).
    pub fn insert(&self, object: Value) {
        let key = key_of(&object);
        self.state.lock().unwrap().objects.insert(key, object);
    }

    /// Makes the next `call` fail with `error` (scripted failures are used in order).
    pub fn fail_next(&self, call: Call, error: ClusterError) {
        self.state.lock().unwrap().failures.push_back((call, error));
    }

    /// Removes an object behind the gateway's back (the operator's TTL, another client's delete).
    pub fn remove(&self, namespace: &str, name: &str) -> Option<Value> {
        let mut state = self.state.lock().unwrap();
        state
            .objects
            .remove(&(namespace.to_string(), name.to_string()))
    }

    /// The stored object, if any.
    pub fn object(&self, namespace: &str, name: &str) -> Option<Value> {
        let state = self.state.lock().unwrap();
        state
            .objects
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    fn begin(&self, call: Call) -> Result<std::sync::MutexGuard<'_, State>, ClusterError> {
        let mut state = self.state.lock().unwrap();
        state.calls.push(call);
        if let Some(position) = state.failures.iter().position(|(c, _)| *c == call) {
            let (_, error) = state
                .failures
                .remove(position)
                .expect("position is in range");
            return Err(error);
        }
        Ok(state)
    }
}

fn key_of(object: &Value) -> (String, String) {
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    (text("/metadata/namespace"), text("/metadata/name"))
}

/// A Kubernetes `Status` error answer.
pub fn api_error(code: u16, reason: &str, message: &str) -> ClusterError {
    ClusterError::Api {
        code,
        reason: reason.into(),
        message: message.into(),
    }
}

impl ClusterApi for FakeCluster {
    async fn create(
        &self,
        _cluster: &str,
        _config: &ClusterConfig,
        app: &Value,
        dry_run: bool,
    ) -> Result<Value, ClusterError> {
        let mut state = self.begin(Call::Create)?;
        let key = key_of(app);
        if state.objects.contains_key(&key) {
            return Err(api_error(
                409,
                "AlreadyExists",
                &format!(
                    "sparkapplications.spark.apache.org \"{}\" already exists",
                    key.1
                ),
            ));
        }
        let mut stored = app.clone();
        state.next_uid += 1;
        stored["metadata"]["uid"] = json!(format!("uid-{}", state.next_uid));
        if !dry_run {
            state.objects.insert(key, stored.clone());
        }
        Ok(stored)
    }

    async fn get(
        &self,
        _cluster: &str,
        _config: &ClusterConfig,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>, ClusterError> {
        let state = self.begin(Call::Get)?;
        Ok(state
            .objects
            .get(&(namespace.to_string(), name.to_string()))
            .cloned())
    }

    async fn find_by_request_id(
        &self,
        _cluster: &str,
        _config: &ClusterConfig,
        namespace: &str,
        request_id: &str,
    ) -> Result<Option<Value>, ClusterError> {
        let state = self.begin(Call::Find)?;
        let label = format!("/metadata/labels/{}", REQUEST_ID_LABEL.replace('/', "~1"));
        Ok(state
            .objects
            .iter()
            .filter(|((ns, _), app)| {
                ns == namespace && app.pointer(&label).and_then(Value::as_str) == Some(request_id)
            })
            .map(|(_, app)| app.clone())
            .next_back())
    }

    async fn delete(
        &self,
        _cluster: &str,
        _config: &ClusterConfig,
        namespace: &str,
        name: &str,
        uid: Option<&str>,
    ) -> Result<Deletion, ClusterError> {
        let mut state = self.begin(Call::Delete)?;
        let key = (namespace.to_string(), name.to_string());
        let Some(existing) = state.objects.get(&key) else {
            return Ok(Deletion::NotFound);
        };
        let stored_uid = existing.pointer("/metadata/uid").and_then(Value::as_str);
        if uid.is_some() && uid != stored_uid {
            return Err(api_error(
                409,
                "Conflict",
                &format!(
                    "Precondition failed: UID in precondition: {}, UID in object meta: {}",
                    uid.unwrap_or_default(),
                    stored_uid.unwrap_or_default()
                ),
            ));
        }
        state.objects.remove(&key);
        Ok(Deletion::Accepted)
    }
}
