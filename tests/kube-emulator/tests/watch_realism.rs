//! The realistic watch preset over real sockets: each test names the kube-apiserver behaviour it pins
//! (etcd compaction, the watch cache, continue tokens after compaction, server-side watch timeouts).
//!
//! Durations are scaled down (`time_scale`), and every wait polls the emulator's own counters with an
//! upper bound, so nothing here depends on how fast the machine is.

use std::time::{Duration, Instant};

use kube_emulator::watch::WatchPreset;
use kube_emulator::{EmulatorConfig, RunningEmulator};
use reqwest::Method;
use serde_json::{Value, json};

/// Upper bound for anything asynchronous to happen.
const WAIT: Duration = Duration::from_secs(30);
const APPS: &str = "/apis/spark.apache.org/v1/namespaces/jobs/sparkapplications";
/// kube-apiserver's `inconsistentContinue` (`storage/etcd3/errors.go`).
const INCONSISTENT_CONTINUE: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

async fn start(config: EmulatorConfig) -> RunningEmulator {
    // reqwest is built without a default crypto provider in the workspace's feature set.
    let _ = rustls::crypto::ring::default_provider().install_default();
    kube_emulator::start(config.with_namespace("jobs"))
        .await
        .expect("the emulator starts")
}

/// Plain HTTP, the realistic preset at `time_scale`.
fn realistic(time_scale: f64) -> EmulatorConfig {
    EmulatorConfig::for_tests()
        .plain_http()
        .with_watch_preset(WatchPreset::Realistic { time_scale })
}

fn spark_app(name: &str) -> Value {
    json!({
        "apiVersion": "spark.apache.org/v1",
        "kind": "SparkApplication",
        "metadata": {"name": name},
        "spec": {
            "pyFiles": "local:///opt/spark/examples/src/main/python/pi.py",
            "runtimeVersions": {"sparkVersion": "4.1.0"}
        }
    })
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

struct Http {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Http {
    fn new(emulator: &RunningEmulator) -> Self {
        Self {
            client: reqwest::Client::new(),
            base: emulator.base_url(),
            token: emulator.token(),
        }
    }

    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.bytes().await.unwrap();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(Method::GET, path, None).await
    }

    /// Creates an application; returns its resourceVersion.
    async fn create(&self, name: &str) -> u64 {
        let (code, created) = self.send(Method::POST, APPS, Some(&spark_app(name))).await;
        assert_eq!(code, 201, "{created}");
        created["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    async fn watch(&self, path_and_query: &str) -> Watch {
        let response = self
            .client
            .get(format!("{}{path_and_query}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        Watch {
            response,
            buffer: Vec::new(),
        }
    }
}

struct Watch {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl Watch {
    /// The next `(type, object)`, or `None` when the server closed the stream.
    async fn next(&mut self) -> Option<(String, Value)> {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                let event: Value = serde_json::from_slice(&line).unwrap();
                return Some((
                    event["type"].as_str().unwrap().to_string(),
                    event["object"].clone(),
                ));
            }
            let chunk = tokio::time::timeout(WAIT, self.response.chunk())
                .await
                .expect("the watch produced nothing in time")
                .unwrap()?;
            self.buffer.extend_from_slice(&chunk);
        }
    }
}

/// Polls the emulator until `done` holds for its stats.
async fn until(
    emulator: &RunningEmulator,
    what: &str,
    done: impl Fn(&kube_emulator::Stats) -> bool,
) {
    let deadline = Instant::now() + WAIT;
    while !done(&emulator.control().stats()) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn oldest(stats: &kube_emulator::Stats) -> u64 {
    stats.oldest_resource_version.parse().unwrap()
}

#[tokio::test]
async fn periodic_compaction_expires_older_watches_and_exact_lists_like_etcd_and_the_watch_cache() {
    // Real: the etcd compactor (every --etcd-compaction-interval) compacts to the revision it saw one
    // round earlier; a watch from before it gets the watch cache's ERROR 410 "too old resource
    // version: R (oldest)", an exact list etcd's "The resourceVersion for the provided list is too old."
    // 0.01: a round every 3 s, so the exact list below comes well before the first compaction.
    let emulator = start(realistic(0.01)).await;
    let http = Http::new(&emulator);
    let a = http.create("a").await;
    http.create("b").await;
    let (code, exact) = http
        .get(&format!(
            "{APPS}?resourceVersion={a}&resourceVersionMatch=Exact"
        ))
        .await;
    assert_eq!((code, names(&exact)), (200, vec!["a".to_string()]));

    until(&emulator, "a compaction past the first write", |s| {
        oldest(s) > a
    })
    .await;
    let stats = emulator.control().stats();
    assert!(stats.compactions >= 1);
    let compacted = oldest(&stats);
    assert_eq!(
        compacted,
        emulator.control().resource_version(),
        "with no writes since, the next round compacts to the latest revision"
    );

    let mut expired = http
        .watch(&format!("{APPS}?watch=true&resourceVersion={a}"))
        .await;
    let (kind, status) = expired.next().await.expect("an ERROR event");
    assert_eq!(kind, "ERROR");
    assert_eq!(
        (status["code"].as_u64(), status["reason"].as_str()),
        (Some(410), Some("Expired"))
    );
    assert_eq!(
        status["message"],
        format!("too old resource version: {a} ({compacted})")
    );
    assert!(
        expired.next().await.is_none(),
        "the server closes the watch"
    );
    assert!(emulator.control().stats().expired_watches >= 1);

    let (code, body) = http
        .get(&format!(
            "{APPS}?resourceVersion={a}&resourceVersionMatch=Exact"
        ))
        .await;
    assert_eq!(code, 410);
    assert_eq!(body["reason"], "Expired");
    assert_eq!(
        body["message"],
        "The resourceVersion for the provided list is too old."
    );

    // From the compaction point on, a watch resumes normally.
    let mut resumed = http
        .watch(&format!("{APPS}?watch=true&resourceVersion={compacted}"))
        .await;
    http.create("c").await;
    let (kind, object) = resumed.next().await.expect("the new change");
    assert_eq!(
        (kind.as_str(), object["metadata"]["name"].as_str()),
        ("ADDED", Some("c"))
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn an_expired_continue_token_gets_410_and_a_token_for_an_inconsistent_rest() {
    // Real: storage/etcd3 handleCompactedErrorForPaging: 410 Expired, `inconsistentContinue`, and in
    // the Status's metadata.continue a token with rv -1 that lists the rest at the latest revision.
    let emulator = start(realistic(0.001)).await;
    let http = Http::new(&emulator);
    for name in ["a", "b", "c", "d"] {
        http.create(name).await;
    }
    let (_, first) = http.get(&format!("{APPS}?limit=2")).await;
    let page_rv: u64 = first["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let token = first["metadata"]["continue"].as_str().unwrap().to_string();
    let created_later = http.create("bb").await;
    until(&emulator, "a compaction past the first page", |s| {
        oldest(s) > page_rv
    })
    .await;

    let (code, status) = http.get(&format!("{APPS}?limit=2&continue={token}")).await;
    assert_eq!(code, 410, "{status}");
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "Expired");
    assert_eq!(status["message"], INCONSISTENT_CONTINUE);
    let fresh = status["metadata"]["continue"]
        .as_str()
        .expect("a continue token for the rest")
        .to_string();

    let (code, rest) = http.get(&format!("{APPS}?limit=10&continue={fresh}")).await;
    assert_eq!(code, 200, "{rest}");
    assert_eq!(
        names(&rest),
        vec!["bb", "c", "d"],
        "the rest after b, at the latest revision: bb was created after the first page"
    );
    let rest_rv: u64 = rest["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rest_rv >= created_later);
    emulator.shutdown().await;
}

#[tokio::test]
async fn the_watch_cache_window_expires_watches_while_exact_lists_still_read_etcd() {
    // Real: the cacher serves watches from a bounded event buffer (410 "too old resource version"
    // below it) while exact lists go to etcd, which keeps everything since the last compaction.
    let mut config = realistic(1.0);
    config.compaction_interval = None;
    config.watch_window = Some(2);
    let emulator = start(config).await;
    let http = Http::new(&emulator);
    let a = http.create("a").await;
    for name in ["b", "c", "d"] {
        http.create(name).await;
    }
    let mut watch = http
        .watch(&format!("{APPS}?watch=true&resourceVersion={a}"))
        .await;
    let (kind, status) = watch.next().await.expect("an ERROR event");
    assert_eq!(
        (kind.as_str(), status["code"].as_u64()),
        ("ERROR", Some(410))
    );
    let oldest = emulator.control().resource_version() - 2;
    assert_eq!(
        status["message"],
        format!("too old resource version: {a} ({oldest})")
    );

    let (code, exact) = http
        .get(&format!(
            "{APPS}?resourceVersion={a}&resourceVersionMatch=Exact"
        ))
        .await;
    assert_eq!((code, names(&exact)), (200, vec!["a".to_string()]));

    let mut within = http
        .watch(&format!("{APPS}?watch=true&resourceVersion={oldest}"))
        .await;
    let replayed: Vec<String> = [within.next().await, within.next().await]
        .into_iter()
        .map(|e| {
            e.unwrap().1["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(replayed, vec!["c", "d"]);
    emulator.shutdown().await;
}

#[tokio::test]
async fn the_server_closes_watches_after_the_scaled_timeout_with_a_bookmark_just_before() {
    // Real: a watch ends after timeoutSeconds (or a random 1-2x --min-request-timeout without one),
    // and the cacher sends a watcher that allows bookmarks one 2 s before that deadline.
    let mut config = realistic(0.01);
    config.bookmark_interval = Duration::from_secs(3600); // only the pre-timeout bookmark
    let emulator = start(config).await;
    let http = Http::new(&emulator);
    http.create("a").await;
    let now = emulator.control().resource_version();

    // timeoutSeconds=290 (kube-rs's default) becomes 2.9 s at this scale.
    let mut watch = http
        .watch(&format!(
            "{APPS}?watch=true&timeoutSeconds=290&allowWatchBookmarks=true&resourceVersion={now}"
        ))
        .await;
    let (kind, bookmark) = watch.next().await.expect("the pre-timeout bookmark");
    assert_eq!(kind, "BOOKMARK");
    assert_eq!(bookmark["metadata"]["resourceVersion"], now.to_string());
    assert!(
        watch.next().await.is_none(),
        "then the server ends the watch"
    );

    // Without timeoutSeconds the server picks 1800-3600 s (18-36 s here); a watch without
    // bookmarks just ends, no event at all.
    let mut config = realistic(0.001);
    config.bookmark_interval = Duration::from_secs(3600);
    let quick = start(config).await;
    let http = Http::new(&quick);
    let now = quick.control().resource_version();
    let mut watch = http
        .watch(&format!("{APPS}?watch=true&resourceVersion={now}"))
        .await;
    assert!(
        watch.next().await.is_none(),
        "the server-side timeout ends it"
    );
    quick.shutdown().await;
    emulator.shutdown().await;
}

#[tokio::test]
async fn realistic_bookmarks_carry_the_latest_resource_version() {
    // Real: the cacher sends watchers that allow bookmarks a BOOKMARK with the cache's current
    // resourceVersion about once a minute (defaultBookmarkFrequency), also when nothing changes.
    let emulator = start(realistic(0.001)).await;
    let http = Http::new(&emulator);
    http.create("a").await;
    let now = emulator.control().resource_version();
    let mut watch = http
        .watch(&format!(
            "{APPS}?watch=true&allowWatchBookmarks=true&resourceVersion={now}"
        ))
        .await;
    let (kind, bookmark) = watch.next().await.expect("a bookmark");
    assert_eq!(kind, "BOOKMARK");
    assert_eq!(bookmark["metadata"]["resourceVersion"], now.to_string());
    assert_eq!(bookmark["kind"], "SparkApplication");
    emulator.shutdown().await;
}
