//! Driver pods, as a cluster has them while the operator runs an application: Spark's submission
//! creates `<app>-<attempt>-driver` when the operator requests the driver, the kubelet moves it
//! through `Pending`, `Running` and its end, and the operator's cleanup deletes it when it releases
//! the attempt's resources (`ResourceReleased`, also before a restart) unless the retain policy keeps
//! it (`TerminatedWithoutReleaseResources`). A deleted SparkApplication takes its pods with it (their
//! owner reference; the garbage collector's part).
//!
//! [`desired`] is the pure part: from the status the simulator just wrote, which driver pod should
//! exist and with which `PodStatus` (the one the operator recorded in `lastObservedDriverStatus`,
//! so the pod and the status never disagree). [`sync`] makes the cluster match.
//!
//! Logs: the API server serves `pods/log` from files, as the kubelet does from the node (the
//! emulator's `--pod-log-dir`): `<dir>/<namespace>/<pod>.log`. A driver run for real writes its own
//! log there ([`crate::drivers`]); for a scripted driver the simulator writes a short log of the
//! same shape when the driver ends, its last line the error a failed driver would print.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use spark_gateway_core::apache_v1::{self, StateMeaning, driver_pod_name, spark_app_id};
use tracing::{debug, warn};

use crate::model::{ApplicationStatus, StateSummary};

/// The node the simulated driver pods run on.
pub const NODE_NAME: &str = "operator-sim-node";

/// Field manager of the simulator's pod writes.
const FIELD_MANAGER: &str = "operator-sim";

/// Which driver pods an application should have.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredPods {
    /// The namespace.
    pub namespace: String,
    /// The current attempt's driver pod and its status, when it exists.
    pub current: Option<DriverPod>,
    /// Driver pods that must not exist (earlier attempts', or the current one after release).
    pub absent: Vec<String>,
}

/// One driver pod.
#[derive(Debug, Clone, PartialEq)]
pub struct DriverPod {
    /// The pod object to create (metadata and spec).
    pub object: Value,
    /// Its `status`.
    pub status: Value,
    /// Whether its driver container has ended (its log is complete).
    pub ended: bool,
}

/// The identity of the application the pods belong to.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    /// The namespace.
    pub namespace: &'a str,
    /// The SparkApplication's name.
    pub name: &'a str,
    /// Its uid (the pods' owner reference).
    pub uid: &'a str,
    /// The driver image.
    pub image: &'a str,
}

/// The driver pods `status` implies.
pub fn desired(owner: Owner<'_>, status: &ApplicationStatus) -> DesiredPods {
    let attempt = status.current_attempt_id();
    let pod = driver_pod_name(owner.namespace, owner.name, attempt);
    let mut absent: Vec<String> = (0..attempt)
        .map(|earlier| driver_pod_name(owner.namespace, owner.name, earlier))
        .collect();
    let states: Vec<&crate::model::ApplicationState> =
        status.state_transition_history.values().collect();
    let requested = states.iter().any(|s| {
        matches!(
            s.current_state_summary,
            StateSummary::DriverRequested | StateSummary::DriverStarted
        )
    });
    let current_state = status.current_state.current_state_summary;
    let released = current_state == StateSummary::ResourceReleased
        || current_state == StateSummary::ScheduledToRestart;
    // `driverUnexpectedRemoved`: the operator found no pod (the scenario records no pod status).
    let removed = current_state.failure().is_some()
        && current_state.is_stopping()
        && status.current_state.last_observed_driver_status.is_none()
        && status.current_state.message.as_deref()
            == Some(crate::model::messages::DRIVER_UNEXPECTED_REMOVED);
    if !requested || released || removed {
        absent.push(pod);
        return DesiredPods {
            namespace: owner.namespace.to_string(),
            current: None,
            absent,
        };
    }
    let recorded = states
        .iter()
        .rev()
        .find_map(|s| s.last_observed_driver_status.clone());
    let status_value = match (recorded, current_state) {
        (Some(recorded), _) => recorded,
        (None, StateSummary::DriverRequested) => json!({"phase": "Pending"}),
        (None, _) => json!({
            "phase": "Running",
            "containerStatuses": [{
                "name": apache_v1::DRIVER_CONTAINER,
                "image": owner.image,
                "imageID": "",
                "ready": current_state != StateSummary::DriverStarted,
                "restartCount": 0,
                "started": true,
                "state": {"running": {}},
            }],
        }),
    };
    let ended = matches!(
        status_value["phase"].as_str(),
        Some("Succeeded") | Some("Failed")
    );
    let object = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod,
            "namespace": owner.namespace,
            "labels": {
                "spark-role": "driver",
                "spark-app-selector": spark_app_id(owner.namespace, owner.name, attempt),
                "spark.operator/spark-app-name": owner.name,
            },
            "ownerReferences": [{
                "apiVersion": apache_v1::API_VERSION,
                "kind": apache_v1::KIND,
                "name": owner.name,
                "uid": owner.uid,
                "controller": true,
            }],
        },
        "spec": {
            // Bound at once, as if the scheduler placed it: the API server serves no log of an
            // unbound pod ("does not have a host assigned").
            "nodeName": NODE_NAME,
            "restartPolicy": "Never",
            "containers": [{
                "name": apache_v1::DRIVER_CONTAINER,
                "image": owner.image,
                "terminationMessagePolicy": "FallbackToLogsOnError",
            }],
        },
    });
    DesiredPods {
        namespace: owner.namespace.to_string(),
        current: Some(DriverPod {
            object,
            status: status_value,
            ended,
        }),
        absent,
    }
}

/// The log a scripted driver leaves: a few lines as Spark's driver prints them, ending in the error
/// of a failed driver (its termination message when the status has one).
pub fn scripted_log(pod: &DriverPod) -> String {
    let terminated = &pod.status["containerStatuses"][0]["state"]["terminated"];
    let exit_code = terminated["exitCode"].as_i64().unwrap_or(0);
    let mut log = String::from(
        "INFO SparkContext: Running Spark version 4.1.0\n\
         INFO SparkContext: Submitted application: operator-sim scripted driver\n",
    );
    if exit_code == 0 {
        log.push_str("INFO SparkContext: Successfully stopped SparkContext\n");
        return log;
    }
    match terminated["message"].as_str() {
        Some(message) => {
            log.push_str(message);
            log.push('\n');
        }
        None => log.push_str(&format!(
            "Traceback (most recent call last):\n  File \"/opt/spark/work-dir/job.py\", line 7, in <module>\n\
             RuntimeError: operator-sim scripted driver failure (exit code {exit_code})\n"
        )),
    }
    log
}

/// Where the log of `pod` in `namespace` is.
pub fn log_path(dir: &Path, namespace: &str, pod: &str) -> PathBuf {
    dir.join(namespace).join(format!("{pod}.log"))
}

/// Makes the cluster match `desired`; failures are logged, not returned: the pods are the
/// cluster's business, the status is the operator's, and a lost pod write is corrected by the next
/// status write.
pub async fn sync(client: Client, desired: DesiredPods, log_dir: Option<PathBuf>) {
    let pods: Api<Pod> = Api::namespaced(client, &desired.namespace);
    for name in &desired.absent {
        match pods.delete(name, &DeleteParams::default()).await {
            Ok(_) => debug!(pod = %name, "driver pod deleted"),
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => warn!(pod = %name, %error, "cannot delete a driver pod"),
        }
    }
    let Some(pod) = desired.current else {
        return;
    };
    let name = pod.object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if pod.ended
        && let Some(dir) = &log_dir
    {
        write_scripted_log(dir, &desired.namespace, &name, &pod).await;
    }
    let existing = match pods.get_opt(&name).await {
        Ok(existing) => existing,
        Err(error) => {
            warn!(pod = %name, %error, "cannot read a driver pod");
            return;
        }
    };
    if existing.is_none() {
        let object: Pod = match serde_json::from_value(pod.object.clone()) {
            Ok(object) => object,
            Err(error) => {
                warn!(pod = %name, %error, "cannot build a driver pod");
                return;
            }
        };
        if let Err(error) = pods.create(&PostParams::default(), &object).await {
            warn!(pod = %name, %error, "cannot create a driver pod");
            return;
        }
    }
    let current_status = existing
        .and_then(|p| serde_json::to_value(p.status).ok())
        .unwrap_or(Value::Null);
    if current_status == pod.status {
        return;
    }
    let patch = Patch::Merge(json!({"status": pod.status}));
    if let Err(error) = pods
        .patch_status(
            &name,
            &PatchParams {
                field_manager: Some(FIELD_MANAGER.to_string()),
                ..PatchParams::default()
            },
            &patch,
        )
        .await
    {
        warn!(pod = %name, %error, "cannot write a driver pod's status");
    }
}

/// A scripted driver's log, unless a real driver wrote one.
async fn write_scripted_log(dir: &Path, namespace: &str, pod: &str, driver: &DriverPod) {
    let path = log_path(dir, namespace, pod);
    if tokio::fs::try_exists(&path).await.unwrap_or(false) {
        return;
    }
    let written = async {
        tokio::fs::create_dir_all(path.parent().unwrap_or(dir)).await?;
        tokio::fs::write(&path, scripted_log(driver)).await
    };
    if let Err(error) = written.await {
        warn!(path = %path.display(), %error, "cannot write a scripted driver log");
    }
}

/// Deletes every driver pod of a deleted application (what its owner reference makes the garbage
/// collector do).
pub async fn collect(client: Client, namespace: &str, name: &str) {
    let pods: Api<Pod> = Api::namespaced(client, namespace);
    let params = kube::api::ListParams::default().labels(&format!(
        "spark.operator/spark-app-name={name},spark-role=driver"
    ));
    let listed = match pods.list(&params).await {
        Ok(listed) => listed,
        Err(error) => {
            debug!(%error, "cannot list driver pods of a deleted application");
            return;
        }
    };
    for pod in listed {
        if let Some(pod_name) = pod.metadata.name {
            let _ = pods.delete(&pod_name, &DeleteParams::default()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ApplicationState;

    const OWNER: Owner<'static> = Owner {
        namespace: "ns",
        name: "pi",
        uid: "u-1",
        image: "apache/spark:4.1.0",
    };

    fn status(states: &[StateSummary], attempt: u64, driver: Option<Value>) -> ApplicationStatus {
        let mut status = ApplicationStatus::initial("2026-12-02T00:00:00Z");
        if let Some(summary) = &mut status.current_attempt_summary {
            summary.attempt_info.id = attempt;
        }
        for (i, state) in states.iter().enumerate() {
            let mut entry = ApplicationState::new(*state, "2026-12-02T00:00:01Z", None);
            if i + 1 == states.len() {
                entry.last_observed_driver_status = driver.clone();
            }
            status = status.append(entry);
        }
        status
    }

    #[test]
    fn no_pod_before_the_driver_is_requested_and_none_after_release() {
        let submitted = desired(OWNER, &status(&[], 0, None));
        assert_eq!(submitted.current, None);
        assert_eq!(submitted.absent, ["pi-0-driver"]);
        let released = desired(
            OWNER,
            &status(
                &[
                    StateSummary::DriverRequested,
                    StateSummary::ResourceReleased,
                ],
                0,
                None,
            ),
        );
        assert_eq!(released.current, None);
    }

    #[test]
    fn the_pod_follows_the_driver_and_carries_the_recorded_status() {
        let pending = desired(OWNER, &status(&[StateSummary::DriverRequested], 0, None));
        let pod = pending.current.unwrap();
        assert_eq!(pod.status["phase"], "Pending");
        assert_eq!(pod.object["metadata"]["name"], "pi-0-driver");
        assert_eq!(pod.object["metadata"]["ownerReferences"][0]["uid"], "u-1");
        assert_eq!(
            pod.object["spec"]["containers"][0]["terminationMessagePolicy"],
            "FallbackToLogsOnError"
        );
        let failed_status = json!({"phase": "Failed", "containerStatuses": [{"name": apache_v1::DRIVER_CONTAINER,
            "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]});
        // Retained after the failure (OnFailure): the pod stays, with the status the operator saw.
        let retained = desired(
            OWNER,
            &status(
                &[
                    StateSummary::DriverRequested,
                    StateSummary::DriverStarted,
                    StateSummary::Failed,
                    StateSummary::TerminatedWithoutReleaseResources,
                ],
                0,
                None,
            ),
        );
        assert!(retained.current.is_some());
        let failed = desired(
            OWNER,
            &status(
                &[StateSummary::DriverRequested, StateSummary::Failed],
                0,
                Some(failed_status.clone()),
            ),
        );
        let pod = failed.current.unwrap();
        assert!(pod.ended);
        assert_eq!(pod.status, failed_status);
        assert!(scripted_log(&pod).contains("RuntimeError: operator-sim scripted driver failure"));
    }

    #[test]
    fn a_new_attempt_removes_the_earlier_attempts_pods() {
        let second = desired(OWNER, &status(&[StateSummary::DriverRequested], 1, None));
        assert_eq!(second.absent, ["pi-0-driver"]);
        assert_eq!(
            second.current.unwrap().object["metadata"]["name"],
            "pi-1-driver"
        );
    }
}
