//! The publisher against an emulator with a real API server's watch behaviour (the `realistic` preset,
//! time-scaled): etcd compaction every 1.5 s instead of 5 minutes, a 1,000-event watch cache,
//! bookmarks every 0.3 s, kube-rs's 290 s watches closed by the server after 1.45 s, plus five API server
//! outages (watches cut, new ones refused until a compaction passed). Watches resuming from a
//! compacted resourceVersion get 410 and the watcher re-lists; every transition must still be
//! published exactly once.
//!
//! The sink records in memory (no Kafka), so a duplicate can only come from the watcher itself.
//! Compactions and 410s are counted by the emulator (`Stats`).

use std::collections::{HashMap, HashSet};

use kube_emulator::ErrorRule;
use kube_emulator::watch::WatchPreset;

use super::*;

/// 5 minutes become 1.5 s, a minute 0.3 s.
const TIME_SCALE: f64 = 0.005;
/// The publisher's watch and the operator simulator's.
const WATCHES: u64 = 2;
const APPLICATIONS: usize = 500;
const WAVES: usize = 5;
const STEP_MILLIS: u64 = 100;

/// Records every successful publish.
#[derive(Clone, Default)]
struct RecordingSink {
    records: Arc<Mutex<Vec<OutgoingRecord>>>,
}

impl RecordingSink {
    fn distinct_ids(&self) -> usize {
        self.records
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.event_id.as_str())
            .collect::<HashSet<_>>()
            .len()
    }
}

impl EventSink for RecordingSink {
    async fn publish(&self, record: &OutgoingRecord) -> Result<(), SinkError> {
        self.records.lock().unwrap().push(record.clone());
        Ok(())
    }

    async fn flush(&self, _timeout: Duration) -> Result<(), SinkError> {
        Ok(())
    }
}

fn scenario_of(index: usize) -> &'static str {
    if index % 5 == 4 { "failure" } else { "success" }
}

fn outcome_of(scenario: &str) -> Outcome {
    match scenario {
        "failure" => failed_outcome(),
        _ => Outcome::Succeeded,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_compactions_and_dropped_watches_every_transition_of_500_applications_is_published_once()
 {
    let config = emulator_config().with_watch_preset(WatchPreset::Realistic {
        time_scale: TIME_SCALE,
    });
    let cluster = Cluster::start_with(config).await;
    let control = cluster.control();
    let sink = RecordingSink::default();
    let watcher = Watcher::start(&cluster, sink.clone(), "realistic", true);
    let at_start = control.stats();
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), "default");

    let mut applications: Vec<(String, String, &'static str)> = Vec::new();
    for wave in 0..WAVES {
        for i in 0..APPLICATIONS / WAVES {
            let index = wave * (APPLICATIONS / WAVES) + i;
            let name = format!("rt-{index:03}");
            let scenario = scenario_of(index);
            let uid = cluster
                .create(&name, scenario, STEP_MILLIS, json!({}))
                .await;
            applications.push((uid, name, scenario));
        }
        // An API server restart mid-lifecycle: every watch is cut and new ones are refused (503)
        // until the periodic compaction has passed a write made meanwhile, so each watch resumes
        // from a compacted resourceVersion, gets 410 and re-lists while applications progress.
        control.inject_errors(ErrorRule {
            verb: Some("watch".to_string()),
            resource: None,
            code: 503,
            count: None,
            rate: Some(1.0),
            retry_after_seconds: None,
            message: None,
        });
        control.drop_watches();
        let marker = leases
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "metadata": {"name": format!("marker-{wave}")},
                    "spec": {"holderIdentity": "test"},
                }))
                .unwrap(),
            )
            .await
            .expect("create a lease");
        let marker_rv: u64 = marker
            .metadata
            .resource_version
            .and_then(|rv| rv.parse().ok())
            .expect("a resourceVersion");
        eventually(
            "a periodic compaction past the outage's write",
            async || {
                let oldest: u64 = control.stats().oldest_resource_version.parse().unwrap();
                (oldest >= marker_rv).then_some(())
            },
        )
        .await;
        let before = control.stats();
        control.clear_faults();
        // kube-rs retries with a growing back-off; each watch must come back through a 410 and a
        // re-list, and be watching again before the next outage.
        let deadline = Instant::now() + WAIT;
        loop {
            let now = control.stats();
            if now.expired_watches >= before.expired_watches + WATCHES
                && lists(&now) >= lists(&before) + WATCHES
                && now.open_watches as u64 >= WATCHES
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "wave {wave}: both watches should resume from a compacted resourceVersion, re-list \
                 and watch again; {now:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    let expected: usize = applications
        .iter()
        .map(|(_, _, scenario)| lifecycle(scenario).len())
        .sum();
    let deadline = Instant::now() + WAIT;
    while sink.distinct_ids() < expected {
        if Instant::now() > deadline {
            panic!("{}", diagnose(&control, &sink, &applications));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The publisher is done with an application once its checkpoint names the last entry; only then
    // can the count of publishes be final.
    let last_ids: HashMap<String, String> = applications
        .iter()
        .map(|(uid, _, scenario)| {
            let (attempt, index, _) = *lifecycle(scenario).last().unwrap();
            (uid.clone(), format!("{uid}/{attempt}/{index}"))
        })
        .collect();
    eventually("every checkpoint at the last entry", async || {
        control
            .objects("spark.apache.org", "sparkapplications")
            .iter()
            .filter(|o| {
                let uid = o["metadata"]["uid"].as_str().unwrap_or_default();
                let checkpoint = o["metadata"]["annotations"][CHECKPOINT_ANNOTATION].as_str();
                last_ids.get(uid).map(String::as_str) == checkpoint
            })
            .count()
            .eq(&applications.len())
            .then_some(())
    })
    .await;
    let at_end = control.stats();

    let records = sink.records.lock().unwrap().clone();
    let events: Vec<Published> = records.iter().map(decode_outgoing).collect();
    for (uid, name, scenario) in &applications {
        assert_lifecycle(&events, uid, name, scenario, &outcome_of(scenario), true);
    }
    assert_eq!(records.len(), expected, "no event id was published twice");
    let compactions = at_end.compactions - at_start.compactions;
    let expired = at_end.expired_watches - at_start.expired_watches;
    let relists = lists(&at_end) - lists(&at_start);
    eprintln!(
        "{} applications, {expected} events, {compactions} compactions, {expired} watches refused with 410, {relists} lists",
        applications.len()
    );
    assert!(compactions >= 3, "only {compactions} compactions");
    assert!(
        relists >= WATCHES * WAVES as u64,
        "after each 410 the watches re-list ({relists} lists)"
    );

    watcher.stop().await;
    cluster.shutdown().await;
}

fn lists(stats: &kube_emulator::Stats) -> u64 {
    stats.requests.get("list").copied().unwrap_or(0)
}

/// Why not everything was published: the applications whose history is longer than what reached the
/// sink, with their history length, checkpoint and resourceVersion.
fn diagnose(
    control: &kube_emulator::Control,
    sink: &RecordingSink,
    applications: &[(String, String, &'static str)],
) -> String {
    let published: HashMap<String, usize> = {
        let mut counts = HashMap::new();
        for record in sink.records.lock().unwrap().iter() {
            *counts.entry(record.record.key.clone()).or_insert(0) += 1;
        }
        counts
    };
    let objects: HashMap<String, Value> = control
        .objects("spark.apache.org", "sparkapplications")
        .into_iter()
        .map(|o| {
            (
                o["metadata"]["uid"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                o,
            )
        })
        .collect();
    let mut behind = Vec::new();
    let mut operator_behind = 0;
    for (uid, name, scenario) in applications {
        let want = lifecycle(scenario).len();
        let got = published.get(uid).copied().unwrap_or(0);
        if got >= want {
            continue;
        }
        let object = &objects[uid];
        let history = object["status"]["stateTransitionHistory"]
            .as_object()
            .map_or(0, |h| h.len());
        if history < want {
            operator_behind += 1;
        }
        behind.push(format!(
            "{name}: published {got}/{want}, history {history}, checkpoint {:?}, rv {}",
            object["metadata"]["annotations"][CHECKPOINT_ANNOTATION].as_str(),
            object["metadata"]["resourceVersion"]
        ));
    }
    format!(
        "{} of {} applications incomplete ({operator_behind} with the operator behind); stats {:?}; first: {:#?}",
        behind.len(),
        applications.len(),
        control.stats(),
        &behind[..behind.len().min(10)]
    )
}
