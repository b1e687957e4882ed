//! Real execution, the I/O edge: a bounded pool of `spark-submit` processes, one per driver, and
//! what each one does (started, SparkContext up, exited), reported back to the runner.
//!
//! At most [`RealConfig::max_submits`] drivers run at once (2 cores here: a Spark driver JVM
//! alone wants one); the others wait in a FIFO queue and show as `DriverRequested`, like pods
//! pending on a full cluster. Each driver runs in its own process group under a memory cap
//! (`spark.driver.memory`, see [`crate::real::localize`]) and a wall-clock limit
//! ([`RealConfig::run_timeout`]); stopping a driver kills its whole group (the JVM and its Python
//! worker), as deleting a driver pod would. Its stdout and stderr go to one log file,
//! `<log_dir>/<namespace>/<driver pod name>.log` (what `kubectl logs` shows on a cluster), which
//! a poll reads for [`crate::real::READY_LINE`] and, after the exit, for the last error line.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use jiff::Timestamp;
use kube::api::DynamicObject;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::process::Command;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::plan::{AppView, Step};
use crate::real::{
    self, Decision, DriverSeen, Execution, LocalTarget, READY_LINE, Submission, Timeouts,
};

/// How the simulator runs Spark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealConfig {
    /// A Spark distribution (`bin/spark-submit`, `jars/`), e.g. the one inside pyspark.
    pub spark_home: PathBuf,
    /// Python for PySpark drivers and workers (`PYSPARK_PYTHON`); spark-submit's default when
    /// `None`.
    pub python: Option<PathBuf>,
    /// Where `local:///opt/spark/...` resolves, and how big a driver may be.
    pub target: LocalTarget,
    /// Driver logs go below this directory.
    pub log_dir: PathBuf,
    /// Drivers running at once.
    pub max_submits: usize,
    /// A driver still running after this long is killed (it then fails).
    pub run_timeout: Duration,
    /// Applications without the execution annotation run for real.
    pub by_default: bool,
}

/// One attempt of one application.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct DriverId {
    namespace: String,
    name: String,
    uid: Option<String>,
    attempt: u64,
}

/// What a driver's supervisor reports.
#[derive(Debug)]
pub struct DriverEvent {
    id: DriverId,
    seen: DriverSeen,
}

impl DriverEvent {
    /// `(namespace, name)` of the application.
    pub fn app(&self) -> (&str, &str) {
        (&self.id.namespace, &self.id.name)
    }
}

struct Pending {
    id: DriverId,
    pod: String,
    submission: real::LocalSubmission,
}

/// The drivers of every application running for real.
pub struct Drivers {
    config: RealConfig,
    seen: HashMap<DriverId, DriverSeen>,
    queue: VecDeque<Pending>,
    running: HashMap<DriverId, oneshot::Sender<()>>,
    events_tx: mpsc::UnboundedSender<DriverEvent>,
    events_rx: mpsc::UnboundedReceiver<DriverEvent>,
    warned: std::collections::HashSet<(String, String)>,
}

impl Drivers {
    /// No drivers yet.
    pub fn new(config: RealConfig) -> Self {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        Self {
            config,
            seen: HashMap::new(),
            queue: VecDeque::new(),
            running: HashMap::new(),
            events_tx,
            events_rx,
            warned: Default::default(),
        }
    }

    /// The next report of any driver (pending forever when nothing runs).
    pub async fn next_event(&mut self) -> Option<DriverEvent> {
        self.events_rx.recv().await
    }

    /// Takes a report in; a driver that ended frees its slot for the next queued one.
    pub fn on_event(&mut self, event: &DriverEvent) {
        if !self.seen.contains_key(&event.id) {
            return; // stopped meanwhile
        }
        if matches!(event.seen, DriverSeen::Exited { .. }) {
            self.running.remove(&event.id);
            self.start_queued();
        }
        info!(app = %format!("{}/{}", event.id.namespace, event.id.name), attempt = event.id.attempt, driver = %event.seen, "driver");
        self.seen.insert(event.id.clone(), event.seen.clone());
    }

    /// The real mode's step for one application, `None` when the scripted core decides (the
    /// application runs scripted, or it is not in a driver phase).
    pub fn step(&mut self, object: &DynamicObject, view: &AppView, now: Timestamp) -> Option<Step> {
        let namespace = object.metadata.namespace.clone().unwrap_or_default();
        let name = object.metadata.name.clone()?;
        let default = if self.config.by_default {
            Execution::Real
        } else {
            Execution::Scripted
        };
        let (execution, problem) = Execution::resolve(
            object.metadata.annotations.as_ref(),
            object.metadata.labels.as_ref(),
            default,
        );
        if let Some(problem) = problem
            && self.warned.insert((namespace.clone(), name.clone()))
        {
            warn!(app = %format!("{namespace}/{name}"), "ignoring {problem}; using the default");
        }
        if execution == Execution::Scripted {
            return None;
        }
        let attempt = view.status.as_ref().map_or(0, |s| s.current_attempt_id());
        let id = DriverId {
            namespace,
            name,
            uid: object.metadata.uid.clone(),
            attempt,
        };
        // Older attempts (and earlier applications of the same name) never run on.
        self.stop_matching(|other| {
            other.namespace == id.namespace && other.name == id.name && *other != id
        });
        let spec = object.data.get("spec");
        let timeouts = Timeouts::from_spec(spec);
        loop {
            let seen = self.seen.get(&id).cloned().unwrap_or(DriverSeen::Absent);
            match real::decide(view, &timeouts, &seen, now) {
                Decision::Delegate { stop_driver } => {
                    if stop_driver {
                        self.stop_matching(|other| *other == id);
                    }
                    return None;
                }
                Decision::Launch => self.request(id.clone(), spec),
                Decision::Act(step) => return Some(step),
            }
        }
    }

    /// Stops every driver of `namespace/name` (the application is gone).
    pub fn forget(&mut self, namespace: &str, name: &str) {
        self.stop_matching(|id| id.namespace == namespace && id.name == name);
    }

    fn stop_matching(&mut self, matches: impl Fn(&DriverId) -> bool) {
        let stale: Vec<DriverId> = self.seen.keys().filter(|id| matches(id)).cloned().collect();
        for id in stale {
            self.seen.remove(&id);
            self.queue.retain(|pending| pending.id != id);
            if let Some(kill) = self.running.remove(&id) {
                info!(app = %format!("{}/{}", id.namespace, id.name), attempt = id.attempt, "stopping driver");
                let _ = kill.send(());
            }
        }
        self.start_queued();
    }

    fn request(&mut self, id: DriverId, spec: Option<&serde_json::Value>) {
        let null = serde_json::Value::Null;
        let submission =
            Submission::from_spec(&id.name, &id.namespace, id.attempt, spec.unwrap_or(&null));
        let pod = submission.driver_pod_name();
        let local = real::localize(&submission, &self.config.target);
        self.seen.insert(id.clone(), DriverSeen::Queued);
        self.queue.push_back(Pending {
            id,
            pod,
            submission: local,
        });
        self.start_queued();
    }

    fn start_queued(&mut self) {
        while self.running.len() < self.config.max_submits.max(1) {
            let Some(next) = self.queue.pop_front() else {
                return;
            };
            let (kill_tx, kill_rx) = oneshot::channel();
            self.running.insert(next.id.clone(), kill_tx);
            tokio::spawn(supervise(
                self.config.clone(),
                next,
                kill_rx,
                self.events_tx.clone(),
            ));
        }
    }
}

/// Runs one driver to its end and reports what it does.
async fn supervise(
    config: RealConfig,
    pending: Pending,
    mut kill: oneshot::Receiver<()>,
    events: mpsc::UnboundedSender<DriverEvent>,
) {
    let Pending {
        id,
        pod,
        submission,
    } = pending;
    let report = |seen: DriverSeen| {
        let _ = events.send(DriverEvent {
            id: id.clone(),
            seen,
        });
    };
    let started = now_stamp();
    let dir = config.log_dir.join(&id.namespace);
    let log_path = dir.join(format!("{pod}.log"));
    let spawned = async {
        tokio::fs::create_dir_all(&dir).await?;
        let properties = dir.join(format!("{pod}.properties"));
        tokio::fs::write(&properties, submission.properties()).await?;
        let log = std::fs::File::create(&log_path)?;
        let mut command = Command::new(config.spark_home.join("bin/spark-submit"));
        // The image's entrypoint: `spark-submit --deploy-mode client --properties-file ... `.
        command
            .arg("--deploy-mode")
            .arg("client")
            .arg("--properties-file")
            .arg(&properties)
            .args(&submission.args)
            .env("SPARK_HOME", &config.spark_home)
            .env("SPARK_LOCAL_IP", "127.0.0.1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .kill_on_drop(true);
        if let Some(python) = &config.python {
            command
                .env("PYSPARK_PYTHON", python)
                .env("PYSPARK_DRIVER_PYTHON", python);
        }
        command.spawn()
    };
    let mut child = match spawned.await {
        Ok(child) => child,
        Err(error) => {
            report(DriverSeen::Exited {
                started: started.clone(),
                finished: now_stamp(),
                code: Some(127),
                last_error: Some(format!("cannot start spark-submit: {error}")),
            });
            return;
        }
    };
    let group = child.id();
    // A simulator that stops (or a test runtime that ends) drops this task: take the group along.
    let _group = GroupGuard(group);
    info!(app = %format!("{}/{}", id.namespace, id.name), pod = %pod, log = %log_path.display(), "driver started");
    report(DriverSeen::Started {
        at: started.clone(),
    });

    let mut scan = LogScan::default();
    let mut ready = false;
    let mut poll = tokio::time::interval(Duration::from_millis(250));
    let deadline = tokio::time::sleep(config.run_timeout);
    tokio::pin!(deadline);
    let mut killed_why = None;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status.ok(),
            _ = poll.tick(), if !ready => {
                if scan.found_ready(&log_path).await {
                    ready = true;
                    report(DriverSeen::Ready { at: started.clone() });
                }
            }
            _ = &mut kill, if killed_why.is_none() => {
                killed_why = Some("stopped by the operator");
                kill_group(group);
            }
            () = &mut deadline, if killed_why.is_none() => {
                killed_why = Some("killed by operator-sim: the run timeout passed");
                kill_group(group);
            }
        }
    };
    if !ready && scan.found_ready(&log_path).await {
        // A short job: its SparkContext came and went between two polls.
        report(DriverSeen::Ready {
            at: started.clone(),
        });
    }
    let code = status.and_then(|s| s.code());
    let tail = read_tail(&log_path).await;
    let last_error = match killed_why {
        Some(why) => Some(why.to_owned()),
        None if code == Some(0) => None,
        None => real::last_error_line(&tail),
    };
    report(DriverSeen::Exited {
        started,
        finished: now_stamp(),
        code,
        last_error,
    });
}

/// Kills a driver's process group when dropped: nothing a driver started outlives it.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        kill_group(self.0);
    }
}

/// Kills a driver's process group (spark-submit's JVM and the Python it started).
fn kill_group(group: Option<u32>) {
    let Some(pid) = group else {
        return;
    };
    // `kill -KILL -- -<pgid>`: the group leader is the spark-submit we spawned.
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Reads a growing log from where it stopped last time, looking for [`READY_LINE`].
#[derive(Default)]
struct LogScan {
    offset: u64,
    carry: String,
}

impl LogScan {
    async fn found_ready(&mut self, path: &PathBuf) -> bool {
        let Ok(mut file) = tokio::fs::File::open(path).await else {
            return false;
        };
        if file
            .seek(std::io::SeekFrom::Start(self.offset))
            .await
            .is_err()
        {
            return false;
        }
        let mut bytes = Vec::new();
        if file.read_to_end(&mut bytes).await.is_err() {
            return false;
        }
        self.offset += bytes.len() as u64;
        self.carry.push_str(&String::from_utf8_lossy(&bytes));
        if self.carry.contains(READY_LINE) {
            return true;
        }
        // Keep the unfinished last line: the marker may be cut between two reads.
        let keep = self.carry.rfind('\n').map_or(0, |at| at + 1);
        self.carry.drain(..keep);
        false
    }
}

async fn read_tail(path: &PathBuf) -> String {
    const TAIL: u64 = 64 * 1024;
    let Ok(mut file) = tokio::fs::File::open(path).await else {
        return String::new();
    };
    let length = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    let _ = file
        .seek(std::io::SeekFrom::Start(length.saturating_sub(TAIL)))
        .await;
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes).await;
    String::from_utf8_lossy(&bytes).into_owned()
}

fn now_stamp() -> String {
    real::stamp(Timestamp::now().as_millisecond())
}

#[cfg(test)]
mod tests {
    //! The pool against a stand-in `spark-submit` (a shell script): queueing, the ready line,
    //! the exit code and last error line, and stopping a running driver. Spark itself runs in
    //! the system tests (`tests/system`, `real_spark`).

    use std::os::unix::fs::PermissionsExt;

    use serde_json::json;

    use super::*;
    use crate::plan::FINALIZER;

    /// A Spark home whose `spark-submit` runs `$1` of its arguments' last one as a script body:
    /// the driver's "program" is its last argument.
    fn fake_spark(dir: &std::path::Path) -> PathBuf {
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let script = bin.join("spark-submit");
        std::fs::write(&script, "#!/bin/sh\nfor last; do :; done\neval \"$last\"\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir.to_path_buf()
    }

    fn config(dir: &std::path::Path) -> RealConfig {
        RealConfig {
            spark_home: fake_spark(&dir.join("spark")),
            python: None,
            target: LocalTarget {
                job_roots: vec![],
                threads: 1,
                max_driver_memory_mib: 256,
            },
            log_dir: dir.join("logs"),
            max_submits: 1,
            run_timeout: Duration::from_secs(60),
            by_default: true,
        }
    }

    /// An application in `DriverRequested` whose driver runs the shell `program`.
    fn app(name: &str, program: &str) -> (DynamicObject, AppView) {
        let value = json!({
            "apiVersion": "spark.apache.org/v1", "kind": "SparkApplication",
            "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"), "finalizers": [FINALIZER]},
            "spec": {"pyFiles": "local:///opt/spark/x.py", "driverArgs": [program]},
            "status": {
                "currentState": {"currentStateSummary": "DriverRequested", "lastTransitionTime": "2026-12-02T10:00:00Z"},
                "stateTransitionHistory": {"0": {"currentStateSummary": "DriverRequested", "lastTransitionTime": "2026-12-02T10:00:00Z"}},
            },
        });
        let object: DynamicObject = serde_json::from_value(value.clone()).unwrap();
        (object, AppView::from_value(&value))
    }

    async fn next(drivers: &mut Drivers) -> (String, DriverSeen) {
        let event = tokio::time::timeout(Duration::from_secs(30), drivers.next_event())
            .await
            .expect("a driver event in 30 s")
            .expect("the channel stays open");
        drivers.on_event(&event);
        (event.id.name.clone(), event.seen)
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("operator-sim-drivers-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[tokio::test]
    async fn one_slot_runs_drivers_in_turn_and_reports_ready_exit_and_last_error() {
        let dir = temp_dir("turns");
        let mut drivers = Drivers::new(config(&dir));
        let now = Timestamp::now();
        let first = format!(
            "echo '26/12/02 01:05:26 INFO BlockManager: {READY_LINE}, x)'; sleep 0.5; echo 'ValueError: boom' >&2; echo '26/12/02 01:05:27 INFO ShutdownHookManager: bye' >&2; exit 3"
        );
        let (object, view) = app("first", &first);
        assert!(drivers.step(&object, &view, now).is_some());
        let (object, view) = app("second", "exit 0");
        drivers.step(&object, &view, now);
        assert_eq!(
            (drivers.running.len(), drivers.queue.len()),
            (1, 1),
            "one slot: the second waits"
        );

        let mut events = Vec::new();
        while events.len() < 5 {
            events.push(next(&mut drivers).await);
        }
        let summary: Vec<String> = events.iter().map(|(n, s)| format!("{n} {s}")).collect();
        assert_eq!(
            summary,
            [
                "first started",
                "first ready",
                "first exited (Some(3))",
                "second started",
                "second exited (Some(0))"
            ]
        );
        let DriverSeen::Exited { last_error, .. } = &events[2].1 else {
            panic!("{events:?}");
        };
        assert_eq!(last_error.as_deref(), Some("ValueError: boom"));
        let log = std::fs::read_to_string(dir.join("logs/ns/first-0-driver.log")).unwrap();
        assert!(log.contains("ValueError: boom"), "{log}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    // Deleting a driver pod kills its containers: stopping a driver kills its process group,
    // the shell's child included.
    #[tokio::test]
    async fn a_stopped_driver_dies_with_its_children() {
        let dir = temp_dir("stop");
        let mut drivers = Drivers::new(config(&dir));
        let pid_file = dir.join("child.pid");
        let program = format!("sleep 60 & echo $! > {}; wait", pid_file.display());
        let (object, view) = app("long", &program);
        drivers.step(&object, &view, Timestamp::now());
        assert_eq!(next(&mut drivers).await.1.to_string(), "started");
        while !pid_file.exists() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let child = std::fs::read_to_string(&pid_file).unwrap();
        drivers.forget("ns", "long");
        let event = tokio::time::timeout(Duration::from_secs(30), drivers.next_event())
            .await
            .expect("the stopped driver reports its end")
            .expect("open");
        let DriverSeen::Exited {
            code, last_error, ..
        } = &event.seen
        else {
            panic!("{event:?}");
        };
        assert_eq!(*code, None, "ended by a signal");
        assert_eq!(last_error.as_deref(), Some("stopped by the operator"));
        // Gone, or a zombie waiting for its new parent to reap it.
        let state = std::fs::read_to_string(format!("/proc/{}/stat", child.trim()))
            .ok()
            .and_then(|stat| {
                stat.rsplit(')')
                    .next()
                    .map(|rest| rest.trim().chars().next())
            })
            .flatten();
        assert!(
            matches!(state, None | Some('Z')),
            "the driver's child {child} outlived it ({state:?})"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
