//! The emulator over real sockets: kube-rs over HTTPS, raw HTTP with reqwest
//! against plain-HTTP instances, the admin API, and the real kubectl.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
    WatchEvent, WatchParams,
};
use kube::runtime::{WatchStreamExt, watcher};
use kube_emulator::{EmulatorConfig, ErrorRule, RunningEmulator};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

/// Upper bound for anything asynchronous to happen.
const WAIT: Duration = Duration::from_secs(15);
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

async fn start(config: EmulatorConfig) -> RunningEmulator {
    let _ = rustls::crypto::ring::default_provider().install_default();
    kube_emulator::start(config.with_namespace("jobs"))
        .await
        .expect("the emulator starts")
}

async fn kube_client(emulator: &RunningEmulator, token: &str) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&emulator.kubeconfig_yaml(token)).unwrap();
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    kube::Client::try_from(config).unwrap()
}

fn spark_resource() -> ApiResource {
    ApiResource {
        group: "spark.apache.org".into(),
        version: "v1".into(),
        api_version: "spark.apache.org/v1".into(),
        kind: "SparkApplication".into(),
        plural: "sparkapplications".into(),
    }
}

fn spark_app(name: &str) -> Value {
    json!({
        "apiVersion": "spark.apache.org/v1",
        "kind": "SparkApplication",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "pyFiles": "local:///opt/spark/examples/src/main/python/pi.py",
            "runtimeVersions": {"sparkVersion": "4.1.0"},
            "sparkConf": {"spark.executor.instances": "2"}
        }
    })
}

fn dynamic(value: Value) -> DynamicObject {
    serde_json::from_value(value).unwrap()
}

fn api_status(error: kube::Error) -> kube::core::Status {
    match error {
        kube::Error::Api(status) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Raw HTTP against a plain-HTTP emulator.
struct Http {
    client: reqwest::Client,
    base: String,
    token: String,
}

const APPS: &str = "/apis/spark.apache.org/v1/namespaces/jobs/sparkapplications";

impl Http {
    fn new(emulator: &RunningEmulator) -> Self {
        Self {
            client: reqwest::Client::new(),
            base: emulator.base_url(),
            token: emulator.token(),
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, HeaderMap, Value) {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.unwrap();
        let value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
        (status, headers, value)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let (status, _, body) = self.send(self.request(Method::GET, path)).await;
        (status, body)
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, HeaderMap, Value) {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    async fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        let (status, _, body) = self.send(self.request(Method::PUT, path).json(body)).await;
        (status, body)
    }

    async fn patch(&self, path: &str, content_type: &str, body: &str) -> (u16, Value) {
        let request = self
            .request(Method::PATCH, path)
            .header("Content-Type", content_type)
            .body(body.to_string());
        let (status, _, body) = self.send(request).await;
        (status, body)
    }

    async fn delete(&self, path: &str) -> (u16, Value) {
        let (status, _, body) = self.send(self.request(Method::DELETE, path)).await;
        (status, body)
    }

    async fn watch(&self, path_and_query: &str) -> Watch {
        let response = self
            .request(Method::GET, path_and_query)
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
    /// The next event, or `None` when the server closed the stream.
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return Some(serde_json::from_slice(&line).unwrap());
            }
            let chunk = tokio::time::timeout(WAIT, self.response.chunk())
                .await
                .expect("the watch produced nothing in time")
                .unwrap()?;
            self.buffer.extend_from_slice(&chunk);
        }
    }

    async fn expect(&mut self) -> (String, Value) {
        let event = self.next().await.expect("the watch ended early");
        (
            event["type"].as_str().unwrap().to_string(),
            event["object"].clone(),
        )
    }
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn crud_conflicts_selectors_and_not_found_through_kube_rs() {
    let emulator = start(EmulatorConfig::for_tests()).await;
    let client = kube_client(&emulator, &emulator.token()).await;
    let apps: Api<DynamicObject> = Api::namespaced_with(client.clone(), "jobs", &spark_resource());

    let created = apps
        .create(&PostParams::default(), &dynamic(spark_app("pi")))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());

    let duplicate = api_status(
        apps.create(&PostParams::default(), &dynamic(spark_app("pi")))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (duplicate.code, duplicate.reason.as_str()),
        (409, "AlreadyExists")
    );
    assert_eq!(
        duplicate.message,
        "sparkapplications.spark.apache.org \"pi\" already exists"
    );

    let missing = api_status(apps.get("nope").await.unwrap_err());
    assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));
    assert_eq!(
        missing.message,
        "sparkapplications.spark.apache.org \"nope\" not found"
    );

    let mut changed = created.clone();
    changed.data["spec"]["driverArgs"] = json!(["1000"]);
    let replaced = apps
        .replace("pi", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_eq!(replaced.metadata.generation, Some(2));
    assert_ne!(
        replaced.metadata.resource_version,
        created.metadata.resource_version
    );
    let stale = api_status(
        apps.replace("pi", &PostParams::default(), &changed)
            .await
            .unwrap_err(),
    );
    assert_eq!((stale.code, stale.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        stale.message,
        "Operation cannot be fulfilled on sparkapplications.spark.apache.org \"pi\": the object has been modified; please apply your changes to the latest version and try again"
    );

    apps.create(&PostParams::default(), &dynamic(spark_app("other")))
        .await
        .unwrap();
    let count = |selector: &'static str| {
        let apps = apps.clone();
        async move {
            apps.list(&ListParams::default().labels(selector))
                .await
                .unwrap()
                .items
                .len()
        }
    };
    assert_eq!(count("app=pi").await, 1);
    assert_eq!(count("app!=pi").await, 1);
    assert_eq!(count("app in (pi,other)").await, 2);
    assert_eq!(count("app notin (pi)").await, 1);
    assert_eq!(count("app").await, 2);
    assert_eq!(count("!app").await, 0);
    let by_name = apps
        .list(&ListParams::default().fields("metadata.name=other"))
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);
    let everywhere: Api<DynamicObject> = Api::all_with(client, &spark_resource());
    assert_eq!(
        everywhere
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        2
    );

    let deleted = apps.delete("pi", &DeleteParams::default()).await.unwrap();
    assert!(
        deleted.is_right(),
        "an object without finalizers is gone at once"
    );
    assert_eq!(api_status(apps.get("pi").await.unwrap_err()).code, 404);
    emulator.shutdown().await;
}

#[tokio::test]
async fn invalid_objects_are_rejected_with_field_causes() {
    let emulator = start(EmulatorConfig::for_tests().plain_http()).await;
    let http = Http::new(&emulator);

    let mut bad = spark_app("bad");
    bad["spec"]["runtimeVersions"] = json!({"scalaVersion": "2.13"});
    bad["spec"]["deploymentMode"] = json!("Foo");
    let (status, _, body) = http.post(APPS, &bad).await;
    assert_eq!(status, 422);
    assert_eq!(body["reason"], "Invalid");
    assert_eq!(
        body["message"],
        "SparkApplication.spark.apache.org \"bad\" is invalid: [spec.deploymentMode: Unsupported value: \"Foo\": supported values: \"ClientMode\", \"ClusterMode\", spec.runtimeVersions.sparkVersion: Required value]"
    );
    let causes = body["details"]["causes"].as_array().unwrap();
    assert!(causes.contains(&json!({"reason": "FieldValueRequired", "message": "Required value", "field": "spec.runtimeVersions.sparkVersion"})));
    assert!(causes.iter().any(|c| c["reason"] == "FieldValueNotSupported" && c["field"] == "spec.deploymentMode"));
    assert_eq!(body["details"]["kind"], "SparkApplication");

    let mut single = spark_app("pi");
    single["spec"]["runtimeVersions"] = json!({});
    let (_, _, body) = http.post(APPS, &single).await;
    assert_eq!(
        body["message"],
        "SparkApplication.spark.apache.org \"pi\" is invalid: spec.runtimeVersions.sparkVersion: Required value"
    );

    let mut typed = spark_app("typed");
    typed["spec"]["sparkConf"]["spark.executor.instances"] = json!(2);
    let (status, _, body) = http.post(APPS, &typed).await;
    assert_eq!(status, 422);
    assert_eq!(
        body["details"]["causes"][0]["reason"],
        "FieldValueTypeInvalid"
    );
    assert_eq!(
        body["details"]["causes"][0]["field"],
        "spec.sparkConf.spark.executor.instances"
    );

    let (status, _, body) = http.post(APPS, &spark_app("Not_A_Name")).await;
    assert_eq!(status, 422);
    assert_eq!(body["details"]["causes"][0]["field"], "metadata.name");

    let mut unknown = spark_app("unknown");
    unknown["spec"]["image"] = json!("spark:4");
    let (status, _, body) = http
        .post(&format!("{APPS}?fieldValidation=Strict"), &unknown)
        .await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .ends_with("strict decoding error: unknown field \"spec.image\""),
        "{body}"
    );
    let (status, headers, body) = http.post(APPS, &unknown).await;
    assert_eq!(status, 201);
    assert!(
        body["spec"].get("image").is_none(),
        "unknown fields are pruned"
    );
    let warning = headers.get("warning").unwrap().to_str().unwrap();
    assert!(
        warning.contains("unknown field \\\"spec.image\\\""),
        "{warning}"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn status_subresource_is_isolated_and_generation_tracks_spec() {
    let emulator = start(EmulatorConfig::for_tests().plain_http()).await;
    let http = Http::new(&emulator);
    let mut app = spark_app("pi");
    app["status"] = json!({"currentState": {"currentStateSummary": "Bogus"}});
    let (status, _, created) = http.post(APPS, &app).await;
    assert_eq!(status, 201);
    assert!(created.get("status").is_none(), "status is reset on create");

    let mut status_write = created.clone();
    status_write["status"] = json!({"currentState": {"currentStateSummary": "Submitted"}});
    status_write["spec"]["driverArgs"] = json!(["ignored"]);
    status_write["metadata"]["labels"]["extra"] = json!("ignored");
    let (code, after_status) = http.put(&format!("{APPS}/pi/status"), &status_write).await;
    assert_eq!(code, 200, "{after_status}");
    assert_eq!(
        after_status["status"]["currentState"]["currentStateSummary"],
        "Submitted"
    );
    assert!(after_status["spec"].get("driverArgs").is_none());
    assert!(after_status["metadata"]["labels"].get("extra").is_none());
    assert_eq!(after_status["metadata"]["generation"], 1);
    assert_ne!(
        after_status["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );

    let mut main_write = after_status.clone();
    main_write["status"] = json!({"currentState": {"currentStateSummary": "Hacked"}});
    let (code, unchanged) = http.put(&format!("{APPS}/pi"), &main_write).await;
    assert_eq!(code, 200);
    assert_eq!(
        unchanged["status"]["currentState"]["currentStateSummary"],
        "Submitted"
    );
    assert_eq!(
        unchanged["metadata"]["resourceVersion"], after_status["metadata"]["resourceVersion"],
        "a write that changes nothing keeps the resourceVersion"
    );

    main_write["spec"]["driverArgs"] = json!(["10"]);
    let (_, respecced) = http.put(&format!("{APPS}/pi"), &main_write).await;
    assert_eq!(respecced["metadata"]["generation"], 2);
    assert_eq!(
        respecced["status"]["currentState"]["currentStateSummary"],
        "Submitted"
    );

    let (_, labelled) = http
        .patch(
            &format!("{APPS}/pi"),
            "application/merge-patch+json",
            r#"{"metadata":{"labels":{"tier":"batch"}}}"#,
        )
        .await;
    assert_eq!(
        labelled["metadata"]["generation"], 2,
        "metadata changes keep the generation"
    );

    let (code, patched) = http
        .patch(
            &format!("{APPS}/pi/status"),
            "application/merge-patch+json",
            r#"{"status":{"currentState":{"currentStateSummary":"RunningHealthy"}},"spec":{"driverArgs":["x"]}}"#,
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(
        patched["status"]["currentState"]["currentStateSummary"],
        "RunningHealthy"
    );
    assert_eq!(patched["spec"]["driverArgs"], json!(["10"]));
    emulator.shutdown().await;
}

#[tokio::test]
async fn finalizers_make_deletion_two_phase() {
    let emulator = start(EmulatorConfig::for_tests()).await;
    let client = kube_client(&emulator, &emulator.token()).await;
    let apps: Api<DynamicObject> = Api::namespaced_with(client, "jobs", &spark_resource());
    let mut app = spark_app("held");
    app["metadata"]["finalizers"] = json!(["example.com/hold"]);
    let created = apps
        .create(&PostParams::default(), &dynamic(app))
        .await
        .unwrap();
    let mut events = apps
        .watch(
            &WatchParams::default(),
            created.metadata.resource_version.as_deref().unwrap(),
        )
        .await
        .unwrap()
        .boxed();

    let pending = apps.delete("held", &DeleteParams::default()).await.unwrap();
    let marked = pending.left().expect("an object with finalizers stays");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(0));
    assert!(apps.get("held").await.is_ok());

    let refused = api_status(
        apps.patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/hold", "new"]}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((refused.code, refused.reason.as_str()), (422, "Invalid"));
    assert!(
        refused
            .message
            .contains("no new finalizers can be added if the object is being deleted")
    );

    apps.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(api_status(apps.get("held").await.unwrap_err()).code, 404);

    let mut seen = Vec::new();
    while seen.last().map(String::as_str) != Some("DELETED") {
        let event = tokio::time::timeout(WAIT, events.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push(
            match event {
                WatchEvent::Added(_) => "ADDED",
                WatchEvent::Modified(_) => "MODIFIED",
                WatchEvent::Deleted(_) => "DELETED",
                WatchEvent::Bookmark(_) => continue,
                WatchEvent::Error(e) => panic!("{e:?}"),
            }
            .to_string(),
        );
    }
    assert_eq!(seen, vec!["MODIFIED", "DELETED"]);
    emulator.shutdown().await;
}

#[tokio::test]
async fn watches_replay_filter_bookmark_and_time_out() {
    let mut config = EmulatorConfig::for_tests().plain_http();
    config.bookmark_interval = Duration::from_millis(100);
    let emulator = start(config).await;
    let http = Http::new(&emulator);
    let (_, _, a) = http.post(APPS, &spark_app("a")).await;
    let after_a = a["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    http.post(APPS, &spark_app("b")).await;
    http.patch(
        &format!("{APPS}/a"),
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"x":"1"}}}"#,
    )
    .await;

    let mut replay = http
        .watch(&format!("{APPS}?watch=true&resourceVersion={after_a}"))
        .await;
    let (kind, object) = replay.expect().await;
    assert_eq!(
        (kind.as_str(), object["metadata"]["name"].as_str()),
        ("ADDED", Some("b"))
    );
    let (kind, object) = replay.expect().await;
    assert_eq!(
        (kind.as_str(), object["metadata"]["name"].as_str()),
        ("MODIFIED", Some("a"))
    );
    assert_eq!(object["apiVersion"], "spark.apache.org/v1");

    let mut initial = http.watch(&format!("{APPS}?watch=1")).await;
    assert_eq!(initial.expect().await.0, "ADDED");
    assert_eq!(initial.expect().await.0, "ADDED");

    let mut streaming = http
        .watch(&format!(
            "{APPS}?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan"
        ))
        .await;
    assert_eq!(streaming.expect().await.0, "ADDED");
    assert_eq!(streaming.expect().await.0, "ADDED");
    let (kind, bookmark) = streaming.expect().await;
    assert_eq!(kind, "BOOKMARK");
    assert_eq!(
        bookmark["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );

    let current = emulator.control().resource_version().to_string();
    let mut bookmarks = http
        .watch(&format!(
            "{APPS}?watch=true&allowWatchBookmarks=true&resourceVersion={current}"
        ))
        .await;
    let (kind, bookmark) = bookmarks.expect().await;
    assert_eq!(kind, "BOOKMARK");
    assert_eq!(bookmark["metadata"]["resourceVersion"], current.as_str());
    assert_eq!(bookmark["kind"], "SparkApplication");

    let mut selected = http
        .watch(&format!(
            "{APPS}?watch=true&labelSelector=app%3Da&resourceVersion={current}"
        ))
        .await;
    http.patch(
        &format!("{APPS}/a"),
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"app":"moved"}}}"#,
    )
    .await;
    let (kind, object) = selected.expect().await;
    assert_eq!(
        kind, "DELETED",
        "an object leaving the selector is deleted for this watcher"
    );
    assert_eq!(object["metadata"]["name"], "a");

    let single =
        format!("{APPS}?watch=true&fieldSelector=metadata.name%3Db&resourceVersion={current}");
    let mut one = http.watch(&single).await;
    http.patch(
        &format!("{APPS}/b"),
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"y":"2"}}}"#,
    )
    .await;
    let (kind, object) = one.expect().await;
    assert_eq!(
        (kind.as_str(), object["metadata"]["name"].as_str()),
        ("MODIFIED", Some("b"))
    );

    let now = emulator.control().resource_version();
    let mut timed = http
        .watch(&format!(
            "{APPS}?watch=true&timeoutSeconds=1&resourceVersion={now}"
        ))
        .await;
    assert!(
        timed.next().await.is_none(),
        "timeoutSeconds closes the stream"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn compaction_and_bounded_history_expire_resource_versions() {
    let emulator = start(EmulatorConfig::for_tests().plain_http()).await;
    let http = Http::new(&emulator);
    let (_, _, a) = http.post(APPS, &spark_app("a")).await;
    let old = a["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    http.post(APPS, &spark_app("b")).await;
    let (_, exact) = http
        .get(&format!(
            "{APPS}?resourceVersion={old}&resourceVersionMatch=Exact"
        ))
        .await;
    assert_eq!(names(&exact), vec!["a"], "an exact list shows the past");

    let compacted = emulator.control().compact_history();
    let mut watch = http
        .watch(&format!("{APPS}?watch=true&resourceVersion={old}"))
        .await;
    let (kind, status) = watch.expect().await;
    assert_eq!(kind, "ERROR");
    assert_eq!(status["code"], 410);
    assert_eq!(status["reason"], "Expired");
    assert_eq!(
        status["message"],
        format!("too old resource version: {old} ({compacted})")
    );
    assert!(watch.next().await.is_none());

    let (code, body) = http
        .get(&format!(
            "{APPS}?resourceVersion={old}&resourceVersionMatch=Exact"
        ))
        .await;
    assert_eq!((code, body["reason"].as_str()), (410, Some("Expired")));

    emulator.control().set_history_limit(1);
    let before = emulator.control().resource_version();
    http.post(APPS, &spark_app("c")).await;
    http.post(APPS, &spark_app("d")).await;
    let mut watch = http
        .watch(&format!("{APPS}?watch=true&resourceVersion={before}"))
        .await;
    assert_eq!(watch.expect().await.1["code"], 410);
    emulator.shutdown().await;
}

#[tokio::test]
async fn kube_runtime_watcher_recovers_from_compaction_and_dropped_connections() {
    let mut config = EmulatorConfig::for_tests();
    config.bookmark_interval = Duration::from_secs(3600);
    let emulator = start(config).await;
    let client = kube_client(&emulator, &emulator.token()).await;
    let apps: Api<DynamicObject> = Api::namespaced_with(client.clone(), "jobs", &spark_resource());
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let recorder = Arc::clone(&seen);
    let stream = watcher(apps.clone(), watcher::Config::default()).applied_objects();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            if let Ok(object) = item {
                recorder
                    .lock()
                    .unwrap()
                    .insert(object.metadata.name.unwrap());
            }
        }
    });
    let wait_for = |name: &'static str| {
        let seen = Arc::clone(&seen);
        async move {
            let deadline = Instant::now() + WAIT;
            while !seen.lock().unwrap().contains(name) {
                assert!(Instant::now() < deadline, "the watcher never saw {name}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    apps.create(&PostParams::default(), &dynamic(spark_app("first")))
        .await
        .unwrap();
    wait_for("first").await;

    // A change the watcher does not see moves the compaction point past its resume point.
    let leases: Api<DynamicObject> = Api::namespaced_with(
        client,
        "jobs",
        &ApiResource {
            group: "coordination.k8s.io".into(),
            version: "v1".into(),
            api_version: "coordination.k8s.io/v1".into(),
            kind: "Lease".into(),
            plural: "leases".into(),
        },
    );
    leases
        .create(&PostParams::default(), &dynamic(json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "leader"}, "spec": {"holderIdentity": "me"}})))
        .await
        .unwrap();
    let lists_before = emulator
        .control()
        .stats()
        .requests
        .get("list")
        .copied()
        .unwrap_or(0);
    emulator.control().compact_history();
    assert_eq!(emulator.control().drop_watches(), 1);
    apps.create(&PostParams::default(), &dynamic(spark_app("second")))
        .await
        .unwrap();
    wait_for("second").await;
    let lists_after = emulator
        .control()
        .stats()
        .requests
        .get("list")
        .copied()
        .unwrap_or(0);
    assert!(
        lists_after > lists_before,
        "the watcher re-listed after 410"
    );

    let streamed = Arc::new(Mutex::new(BTreeSet::new()));
    let recorder = Arc::clone(&streamed);
    let streaming =
        watcher(apps.clone(), watcher::Config::default().streaming_lists()).applied_objects();
    let streaming_task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(streaming);
        while let Some(Ok(object)) = stream.next().await {
            recorder
                .lock()
                .unwrap()
                .insert(object.metadata.name.unwrap());
        }
    });
    let deadline = Instant::now() + WAIT;
    while streamed.lock().unwrap().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the streaming-list watcher saw {:?}",
            streamed.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();
    streaming_task.abort();
    emulator.shutdown().await;
}

#[tokio::test]
async fn authentication_authorization_and_token_rotation() {
    let emulator = start(EmulatorConfig::for_tests().plain_http()).await;
    let http = Http::new(&emulator);
    let control = emulator.control();
    let url = format!("{}{APPS}", emulator.base_url());
    // As kube-apiserver with anonymous auth on: no token is system:anonymous (403), a token nobody
    // issued is 401.
    let anonymous = reqwest::get(&url).await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 403);
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(
        body["message"],
        "sparkapplications.spark.apache.org is forbidden: User \"system:anonymous\" cannot list resource \"sparkapplications\" in API group \"spark.apache.org\" in the namespace \"jobs\""
    );
    let unknown = reqwest::Client::new()
        .get(&url)
        .bearer_auth("nobody-issued-this")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 401);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(
        (body["reason"].as_str(), body["kind"].as_str()),
        (Some("Unauthorized"), Some("Status"))
    );
    let health = reqwest::get(format!("{}/healthz", emulator.base_url()))
        .await
        .unwrap();
    assert_eq!(health.text().await.unwrap(), "ok");

    http.post(APPS, &spark_app("pi")).await;
    control.add_token_for("viewer-token", "viewer", true);
    let viewer = Http {
        token: "viewer-token".into(),
        ..Http::new(&emulator)
    };
    assert_eq!(viewer.get(APPS).await.0, 200);
    let (code, _, body) = viewer.post(APPS, &spark_app("x")).await;
    assert_eq!((code, body["reason"].as_str()), (403, Some("Forbidden")));
    assert_eq!(
        body["message"],
        "sparkapplications.spark.apache.org is forbidden: User \"viewer\" cannot create resource \"sparkapplications\" in API group \"spark.apache.org\" in the namespace \"jobs\""
    );
    let (code, body) = viewer.delete(&format!("{APPS}/pi")).await;
    assert_eq!(code, 403);
    assert!(body["message"].as_str().unwrap().starts_with(
        "sparkapplications.spark.apache.org \"pi\" is forbidden: User \"viewer\" cannot delete"
    ));

    let old = emulator.token();
    control.add_token("rotated");
    assert!(control.revoke_token(&old));
    assert_eq!(http.get(APPS).await.0, 401, "the revoked token is refused");
    let rotated = Http {
        token: "rotated".into(),
        ..Http::new(&emulator)
    };
    assert_eq!(rotated.get(APPS).await.0, 200);
    assert_eq!(emulator.token(), "rotated");
    emulator.shutdown().await;
}

#[tokio::test]
async fn fault_controls_and_the_admin_api() {
    let mut config = EmulatorConfig::for_tests().plain_http();
    config.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    let emulator = start(config).await;
    let http = Http::new(&emulator);
    let control = emulator.control();
    let admin = format!("http://{}", emulator.admin_addr().unwrap());
    let plain = reqwest::Client::new();

    control.set_latency(Duration::from_millis(200));
    let started = Instant::now();
    assert_eq!(http.get(APPS).await.0, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "latency is added"
    );
    control.clear_faults();

    control.inject_errors(ErrorRule::next("create", 503, 2));
    for _ in 0..2 {
        let (code, _, body) = http.post(APPS, &spark_app("pi")).await;
        assert_eq!(
            (code, body["reason"].as_str()),
            (503, Some("ServiceUnavailable"))
        );
    }
    assert_eq!(http.post(APPS, &spark_app("pi")).await.0, 201);

    control.inject_errors(ErrorRule::next("list", 429, 1).retry_after(3));
    let (code, headers, body) = http.send(http.request(Method::GET, APPS)).await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (429, Some("TooManyRequests"))
    );
    assert_eq!(headers.get("retry-after").unwrap(), "3");
    assert_eq!(body["details"]["retryAfterSeconds"], 3);

    control.inject_errors(ErrorRule::rate("get", 500, 1.0).for_resource("sparkapplications"));
    for _ in 0..3 {
        let (code, body) = http.get(&format!("{APPS}/pi")).await;
        assert_eq!(
            (code, body["reason"].as_str()),
            (500, Some("InternalError"))
        );
    }
    control.clear_faults();
    assert_eq!(http.get(&format!("{APPS}/pi")).await.0, 200);

    let added = plain
        .post(format!("{admin}/faults/errors"))
        .json(&json!({"verb": "delete", "code": 403, "count": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status().as_u16(), 201);
    assert_eq!(http.delete(&format!("{APPS}/pi")).await.0, 403);
    plain
        .put(format!("{admin}/faults/latency"))
        .json(&json!({"millis": 150, "verb": "get"}))
        .send()
        .await
        .unwrap();
    let started = Instant::now();
    http.get(&format!("{APPS}/pi")).await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    plain
        .delete(format!("{admin}/faults"))
        .send()
        .await
        .unwrap();

    let mut watch = http
        .watch(&format!(
            "{APPS}?watch=true&resourceVersion={}",
            control.resource_version()
        ))
        .await;
    let dropped: Value = plain
        .post(format!("{admin}/watches/drop"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(dropped["watches"], 1);
    assert!(watch.next().await.is_none(), "dropped watches end");

    let mut watch = http
        .watch(&format!(
            "{APPS}?watch=true&resourceVersion={}",
            control.resource_version()
        ))
        .await;
    plain
        .post(format!("{admin}/watches/drop"))
        .json(&json!({"after_events": 1}))
        .send()
        .await
        .unwrap();
    http.post(APPS, &spark_app("after")).await;
    http.post(APPS, &spark_app("after-after")).await;
    assert_eq!(watch.expect().await.0, "ADDED");
    assert!(
        watch.next().await.is_none(),
        "the watch ends after one more event"
    );

    let stats: Value = plain
        .get(format!("{admin}/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(stats["requests"]["create"].as_u64().unwrap() >= 3);
    assert_eq!(
        stats["resource_version"],
        control.resource_version().to_string()
    );
    let compacted: Value = plain
        .post(format!("{admin}/history/compact"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        compacted["compactedThrough"],
        control.resource_version().to_string()
    );

    let revoked = plain
        .delete(format!("{admin}/tokens/{}", emulator.token()))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status().as_u16(), 200);
    assert_eq!(http.get(APPS).await.0, 401);
    plain
        .post(format!("{admin}/tokens"))
        .json(&json!({"token": http.token}))
        .send()
        .await
        .unwrap();
    assert_eq!(http.get(APPS).await.0, 200);
    emulator.shutdown().await;
}

#[tokio::test]
async fn tables_render_printer_columns() {
    let emulator = start(EmulatorConfig::for_tests().plain_http()).await;
    let http = Http::new(&emulator);
    http.post(APPS, &spark_app("pi")).await;
    http.patch(
        &format!("{APPS}/pi/status"),
        "application/merge-patch+json",
        r#"{"status":{"currentState":{"currentStateSummary":"RunningHealthy"}}}"#,
    )
    .await;
    let table_get =
        |path: String| http.send(http.request(Method::GET, &path).header("Accept", TABLE));

    let (code, _, table) = table_get(APPS.to_string()).await;
    assert_eq!(code, 200);
    assert_eq!(table["kind"], "Table");
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, vec!["Name", "Current State", "Age"]);
    let cells = &table["rows"][0]["cells"];
    assert_eq!(
        (cells[0].as_str(), cells[1].as_str()),
        (Some("pi"), Some("RunningHealthy"))
    );
    assert!(
        cells[2].as_str().unwrap().ends_with('s'),
        "age like 0s: {cells}"
    );
    assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");

    let (_, _, one) = table_get(format!("{APPS}/pi")).await;
    assert_eq!(one["rows"].as_array().unwrap().len(), 1);

    let (_, _, namespaces) = table_get("/api/v1/namespaces".to_string()).await;
    assert_eq!(namespaces["columnDefinitions"][1]["name"], "Status");
    let jobs = namespaces["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["cells"][0] == "jobs")
        .unwrap();
    assert_eq!(jobs["cells"][1], "Active");

    let response = http
        .request(Method::GET, &format!("{APPS}?watch=true"))
        .header("Accept", TABLE)
        .send()
        .await
        .unwrap();
    let mut watch = Watch {
        response,
        buffer: Vec::new(),
    };
    let (kind, object) = watch.expect().await;
    assert_eq!(
        (kind.as_str(), object["kind"].as_str()),
        ("ADDED", Some("Table"))
    );
    assert_eq!(object["rows"][0]["cells"][1], "RunningHealthy");
    emulator.shutdown().await;
}

#[tokio::test]
async fn path_prefix_and_namespace_lifecycle() {
    let emulator = start(
        EmulatorConfig::for_tests()
            .plain_http()
            .with_path_prefix("/k8s/clusters/dev"),
    )
    .await;
    assert!(emulator.base_url().ends_with("/k8s/clusters/dev"));
    let http = Http::new(&emulator);
    assert_eq!(http.get("/api").await.0, 200);
    let outside = format!("http://{}/api", emulator.local_addr());
    let outside = reqwest::Client::new()
        .get(outside)
        .bearer_auth(emulator.token())
        .send()
        .await
        .unwrap();
    assert_eq!(outside.status().as_u16(), 404);

    let (code, _, body) = http
        .post(
            "/apis/spark.apache.org/v1/namespaces/missing/sparkapplications",
            &spark_app("pi"),
        )
        .await;
    assert_eq!(
        (code, body["message"].as_str()),
        (404, Some("namespaces \"missing\" not found"))
    );

    let mut held = spark_app("held");
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    http.post(APPS, &held).await;
    http.post(APPS, &spark_app("free")).await;
    let (code, namespace) = http.delete("/api/v1/namespaces/jobs").await;
    assert_eq!(code, 200);
    assert_eq!(namespace["status"]["phase"], "Terminating");
    let (code, _, body) = http.post(APPS, &spark_app("late")).await;
    assert_eq!((code, body["reason"].as_str()), (403, Some("Forbidden")));
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .ends_with("because it is being terminated")
    );
    assert_eq!(
        http.get(&format!("{APPS}/free")).await.0,
        404,
        "objects without finalizers go at once"
    );
    let (_, held_now) = http.get(&format!("{APPS}/held")).await;
    assert!(held_now["metadata"]["deletionTimestamp"].is_string());

    http.patch(
        &format!("{APPS}/held"),
        "application/merge-patch+json",
        r#"{"metadata":{"finalizers":null}}"#,
    )
    .await;
    assert_eq!(http.get(&format!("{APPS}/held")).await.0, 404);
    assert_eq!(
        http.get("/api/v1/namespaces/jobs").await.0,
        404,
        "an empty terminating namespace disappears"
    );
    let (code, _, _) = http
        .post(
            "/api/v1/namespaces",
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "jobs"}}),
        )
        .await;
    assert_eq!(code, 201);
    emulator.shutdown().await;
}

#[tokio::test]
async fn pagination_apply_and_patch_types() {
    let emulator = start(EmulatorConfig::for_tests().plain_http()).await;
    let http = Http::new(&emulator);
    for name in ["a", "b", "c", "d", "e"] {
        http.post(APPS, &spark_app(name)).await;
    }
    let (_, first) = http.get(&format!("{APPS}?limit=2")).await;
    assert_eq!(names(&first), vec!["a", "b"]);
    assert_eq!(first["metadata"]["remainingItemCount"], 3);
    http.post(APPS, &spark_app("zz")).await;
    let mut all = names(&first);
    let mut token = first["metadata"]["continue"].as_str().map(str::to_string);
    while let Some(next) = token {
        let (_, page) = http.get(&format!("{APPS}?limit=2&continue={next}")).await;
        all.extend(names(&page));
        token = page["metadata"]["continue"].as_str().map(str::to_string);
    }
    assert_eq!(
        all,
        vec!["a", "b", "c", "d", "e"],
        "pages come from one snapshot"
    );

    let applied = "apiVersion: spark.apache.org/v1\nkind: SparkApplication\nmetadata:\n  name: applied\nspec:\n  runtimeVersions:\n    sparkVersion: \"4.1.0\"\n";
    let (code, _) = http
        .patch(
            &format!("{APPS}/applied"),
            "application/apply-patch+yaml",
            applied,
        )
        .await;
    assert_eq!(code, 422, "apply needs a field manager");
    let path = format!("{APPS}/applied?fieldManager=test");
    let (code, created) = http
        .patch(&path, "application/apply-patch+yaml", applied)
        .await;
    assert_eq!(code, 201, "{created}");
    let (code, merged) = http
        .patch(
            &path,
            "application/apply-patch+yaml",
            &applied.replace("4.1.0", "4.0.0"),
        )
        .await;
    assert_eq!(
        (
            code,
            merged["spec"]["runtimeVersions"]["sparkVersion"].as_str()
        ),
        (200, Some("4.0.0"))
    );

    let (code, body) = http
        .patch(
            &format!("{APPS}/a"),
            "application/strategic-merge-patch+json",
            r#"{"spec":{}}"#,
        )
        .await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (415, Some("UnsupportedMediaType"))
    );
    let (code, patched) = http
        .patch(
            &format!("{APPS}/a"),
            "application/json-patch+json",
            r#"[{"op":"replace","path":"/spec/runtimeVersions/sparkVersion","value":"3.5.0"}]"#,
        )
        .await;
    assert_eq!(
        (
            code,
            patched["spec"]["runtimeVersions"]["sparkVersion"].as_str()
        ),
        (200, Some("3.5.0"))
    );
    let (code, _) = http
        .patch(
            &format!("{APPS}/a"),
            "application/json-patch+json",
            r#"[{"op":"test","path":"/spec/pyFiles","value":"nope"}]"#,
        )
        .await;
    assert_eq!(code, 422);
    let (code, _) = http
        .patch(
            &format!("{APPS}/missing"),
            "application/merge-patch+json",
            "{}",
        )
        .await;
    assert_eq!(code, 404);

    let (code, _, generated) = http
        .post(APPS, &json!({"apiVersion": "spark.apache.org/v1", "kind": "SparkApplication", "metadata": {"generateName": "job-"}, "spec": {"runtimeVersions": {"sparkVersion": "4"}}}))
        .await;
    assert_eq!(code, 201);
    assert!(
        generated["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("job-")
    );
    let mut versioned = spark_app("versioned");
    versioned["metadata"]["resourceVersion"] = json!("5");
    let (code, _, body) = http.post(APPS, &versioned).await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (500, Some("InternalError"))
    );
    let (code, _, dry) = http
        .post(&format!("{APPS}?dryRun=All"), &spark_app("dry"))
        .await;
    assert_eq!((code, dry["metadata"]["name"].as_str()), (201, Some("dry")));
    assert_eq!(
        http.get(&format!("{APPS}/dry")).await.0,
        404,
        "dry runs store nothing"
    );
    let (_, older) = http
        .get("/apis/spark.apache.org/v1beta1/namespaces/jobs/sparkapplications/a")
        .await;
    assert_eq!(
        older["apiVersion"], "spark.apache.org/v1beta1",
        "every served version shows the object"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn the_real_kubectl_applies_lists_and_deletes() {
    let kubectl = std::path::Path::new("/usr/bin/kubectl");
    if !kubectl.exists() {
        eprintln!("skipping: /usr/bin/kubectl is missing");
        return;
    }
    let emulator = start(EmulatorConfig::for_tests()).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, emulator.kubeconfig_yaml(&emulator.token())).unwrap();
    let manifest = dir.path().join("pi.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: spark.apache.org/v1\nkind: SparkApplication\nmetadata:\n  name: pi-test\n  namespace: jobs\nspec:\n  pyFiles: local:///opt/spark/examples/src/main/python/pi.py\n  runtimeVersions:\n    sparkVersion: \"4.1.0\"\n  sparkConf:\n    spark.executor.instances: \"2\"\n",
    )
    .unwrap();
    let run = |args: Vec<String>| {
        let kubeconfig = kubeconfig.clone();
        let home = dir.path().to_path_buf();
        async move {
            let output = tokio::process::Command::new(kubectl)
                .args(&args)
                .env("KUBECONFIG", &kubeconfig)
                .env("HOME", &home)
                .output()
                .await
                .unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout).to_string();
            let stderr = String::from_utf8_lossy(&output.stderr).to_string();
            (output.status.success(), stdout, stderr)
        }
    };
    let args = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();

    let (ok, stdout, stderr) = run(vec![
        "apply".into(),
        "-f".into(),
        manifest.display().to_string(),
    ])
    .await;
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout.trim(),
        "sparkapplication.spark.apache.org/pi-test created"
    );

    let (ok, _, stderr) = run(vec![
        "patch".into(),
        "sparkapp".into(),
        "pi-test".into(),
        "-n".into(),
        "jobs".into(),
        "--subresource=status".into(),
        "--type=merge".into(),
        "-p".into(),
        r#"{"status":{"currentState":{"currentStateSummary":"RunningHealthy"}}}"#.into(),
    ])
    .await;
    assert!(ok, "{stderr}");

    let (ok, stdout, stderr) = run(args("get sparkapp -A")).await;
    assert!(ok, "{stderr}");
    let lines: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        vec!["NAMESPACE", "NAME", "CURRENT", "STATE", "AGE"],
        "{stdout}"
    );
    assert_eq!(
        &lines[1][..3],
        &["jobs", "pi-test", "RunningHealthy"],
        "{stdout}"
    );

    let (ok, stdout, stderr) = run(args("delete sparkapp pi-test -n jobs")).await;
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout.trim(),
        "sparkapplication.spark.apache.org \"pi-test\" deleted"
    );
    let (ok, _, stderr) = run(args("get sparkapp pi-test -n jobs")).await;
    assert!(!ok);
    assert!(stderr.contains("NotFound"), "{stderr}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn pod_logs_are_served_from_the_log_directory_as_the_kubelet_serves_them() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::LogParams;

    let logs = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(logs.path().join("jobs")).unwrap();
    let log: String = (1..=5).map(|i| format!("line {i}\n")).collect();
    std::fs::write(logs.path().join("jobs/driver.log"), &log).unwrap();
    let emulator = start(EmulatorConfig {
        pod_log_dir: Some(logs.path().to_path_buf()),
        ..EmulatorConfig::for_tests()
    })
    .await;
    let client = kube_client(&emulator, &emulator.token()).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "jobs");
    let pod = |name: &str, containers: &[&str], node: bool| -> Pod {
        let containers: Vec<Value> = containers
            .iter()
            .map(|c| json!({"name": c, "image": "apache/spark"}))
            .collect();
        let mut spec = json!({"containers": containers});
        if node {
            spec["nodeName"] = json!("node-1");
        }
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
    };
    pods.create(
        &PostParams::default(),
        &pod("driver", &["spark-kubernetes-driver"], true),
    )
    .await
    .unwrap();

    // The whole log, the last lines (tailLines), then at most some bytes of them (limitBytes).
    assert_eq!(
        pods.logs("driver", &LogParams::default()).await.unwrap(),
        log
    );
    let tail = LogParams {
        tail_lines: Some(2),
        ..LogParams::default()
    };
    assert_eq!(
        pods.logs("driver", &tail).await.unwrap(),
        "line 4\nline 5\n"
    );
    let limited = LogParams {
        tail_lines: Some(2),
        limit_bytes: Some(4),
        ..LogParams::default()
    };
    assert_eq!(pods.logs("driver", &limited).await.unwrap(), "line");

    // kube-apiserver's answers (`LogLocation`, `ValidatePodLogOptions`): 404 for a missing pod, 400
    // for a container that is not the pod's, for several containers and none named, for an unbound
    // pod, for a negative tailLines, and for a previous container that never was.
    assert_eq!(
        api_status(pods.logs("gone", &LogParams::default()).await.unwrap_err()).code,
        404
    );
    let other = LogParams {
        container: Some("sidecar".into()),
        ..LogParams::default()
    };
    let status = api_status(pods.logs("driver", &other).await.unwrap_err());
    assert_eq!(
        (status.code, status.message.as_str()),
        (400, "container sidecar is not valid for pod driver")
    );
    pods.create(&PostParams::default(), &pod("two", &["a", "b"], true))
        .await
        .unwrap();
    let status = api_status(pods.logs("two", &LogParams::default()).await.unwrap_err());
    assert_eq!(
        status.message,
        "a container name must be specified for pod two, choose one of: [a b]"
    );
    pods.create(&PostParams::default(), &pod("pending", &["a"], false))
        .await
        .unwrap();
    let status = api_status(
        pods.logs("pending", &LogParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(status.message, "pod pending does not have a host assigned");
    let previous = LogParams {
        previous: true,
        ..LogParams::default()
    };
    assert_eq!(
        api_status(pods.logs("driver", &previous).await.unwrap_err()).code,
        400
    );
    let get = |path: &str| {
        http::Request::get(path.to_string())
            .body(Vec::new())
            .unwrap()
    };
    let negative = client
        .request_text(get("/api/v1/namespaces/jobs/pods/driver/log?tailLines=-1"))
        .await
        .unwrap_err();
    assert_eq!(api_status(negative).code, 400);
    // A pod without a log file yet: an empty log, as a container that has written nothing.
    pods.create(&PostParams::default(), &pod("quiet", &["a"], true))
        .await
        .unwrap();
    assert_eq!(pods.logs("quiet", &LogParams::default()).await.unwrap(), "");

    // Discovery lists the subresource, with the real server's verbs.
    let core: Value = client.request(get("/api/v1")).await.unwrap();
    let log_resource = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "pods/log")
        .expect("pods/log in discovery");
    assert_eq!(log_resource["verbs"], json!(["get"]));

    // The real kubectl reads it the same way.
    let kubectl = std::path::Path::new("/usr/bin/kubectl");
    if kubectl.exists() {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, emulator.kubeconfig_yaml(&emulator.token())).unwrap();
        let output = tokio::process::Command::new(kubectl)
            .args(["logs", "driver", "-n", "jobs", "--tail", "1"])
            .env("KUBECONFIG", &kubeconfig)
            .env("HOME", dir.path())
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&output.stdout), "line 5\n");
    }
}
