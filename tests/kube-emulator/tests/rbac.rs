//! RBAC over real sockets, with the repository's own manifests: the watcher's `infra/k8s/base/rbac.yaml`
//! (its Role and RoleBinding get their namespace from `infra/k8s/base/kustomization.yaml`) and the kind
//! flow's gateway access `infra/kind/gateway-access.yaml`. What is pinned is kube-apiserver's behaviour
//! with anonymous auth and the RBAC authorizer: the verbs each service account is granted work, every
//! other call gets 403 with the real server's Status body, and anonymous requests see only the public
//! info paths.

use std::path::PathBuf;

use kube_emulator::rbac::RbacManifest;
use kube_emulator::{EmulatorConfig, RunningEmulator};
use reqwest::Method;
use serde_json::{Value, json};

const GATEWAY: (&str, &str) = ("spark-gateway", "spark-gateway");
const WATCHER: (&str, &str) = ("spark-gateway", "spark-gateway-watcher");
const JOBS: &str = "sjns-data-control";

fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

async fn start() -> RunningEmulator {
    // reqwest is built without a default crypto provider in the workspace's feature set.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = EmulatorConfig::for_tests()
        .plain_http()
        .with_namespace(JOBS)
        .with_namespace("spark-jobs")
        .with_namespace("spark-gateway")
        .with_rbac_manifest(RbacManifest::new(repo_file("infra/k8s/base/rbac.yaml")))
        .with_rbac_manifest(RbacManifest::new(repo_file(
            "infra/kind/gateway-access.yaml",
        )));
    kube_emulator::start(config)
        .await
        .expect("the emulator starts")
}

/// Mints a token for a service account and returns a client sending it.
fn client(emulator: &RunningEmulator, (namespace, name): (&str, &str)) -> Client {
    let token = kube_emulator::random_token();
    emulator
        .control()
        .add_service_account_token(&token, namespace, name);
    Client {
        base: emulator.base_url(),
        token: Some(token),
    }
}

struct Client {
    base: String,
    token: Option<String>,
}

impl Client {
    async fn send(&self, method: Method, path: &str, body: Option<(&str, Value)>) -> (u16, Value) {
        let mut request = reqwest::Client::new().request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some((content_type, body)) = body {
            request = request
                .header("Content-Type", content_type)
                .body(body.to_string());
        }
        let response = request.send().await.expect("the emulator answers");
        let code = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(Method::GET, path, None).await
    }
}

fn apps(namespace: &str) -> String {
    format!("/apis/spark.apache.org/v1/namespaces/{namespace}/sparkapplications")
}

fn leases(namespace: &str) -> String {
    format!("/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases")
}

fn app(name: &str) -> Value {
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

fn lease(name: &str) -> Value {
    json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name}, "spec": {}})
}

const JSON: &str = "application/json";
const MERGE: &str = "application/merge-patch+json";

#[tokio::test]
async fn the_gateway_account_may_create_get_list_and_delete_applications_in_its_namespace_only() {
    let emulator = start().await;
    let gateway = client(&emulator, GATEWAY);
    let (code, _) = gateway
        .send(Method::POST, &apps(JOBS), Some((JSON, app("pi"))))
        .await;
    assert_eq!(code, 201);
    assert_eq!(gateway.get(&format!("{}/pi", apps(JOBS))).await.0, 200);

    // list is granted (a status query by request id is a list by label); watch is not.
    assert_eq!(gateway.get(&apps(JOBS)).await.0, 200);
    let (code, body) = gateway.get(&format!("{}?watch=true", apps(JOBS))).await;
    assert_eq!(code, 403);
    assert_eq!(
        body,
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "sparkapplications.spark.apache.org is forbidden: User \"system:serviceaccount:spark-gateway:spark-gateway\" cannot watch resource \"sparkapplications\" in API group \"spark.apache.org\" in the namespace \"sjns-data-control\"",
            "reason": "Forbidden",
            "details": {"group": "spark.apache.org", "kind": "sparkapplications"},
            "code": 403
        }),
        "the body kube-apiserver sends"
    );
    let (code, body) = gateway
        .send(
            Method::PATCH,
            &format!("{}/pi/status", apps(JOBS)),
            Some((MERGE, json!({"status": {}}))),
        )
        .await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        "sparkapplications.spark.apache.org \"pi\" is forbidden: User \"system:serviceaccount:spark-gateway:spark-gateway\" cannot patch resource \"sparkapplications/status\" in API group \"spark.apache.org\" in the namespace \"sjns-data-control\""
    );
    assert_eq!(
        body["details"],
        json!({"name": "pi", "group": "spark.apache.org", "kind": "sparkapplications"})
    );
    let (code, body) = gateway
        .send(Method::POST, &apps("spark-jobs"), Some((JSON, app("pi"))))
        .await;
    assert_eq!(code, 403, "the Role is bound in {JOBS} only: {body}");
    let all = "/apis/spark.apache.org/v1/sparkapplications";
    let (code, body) = gateway.get(all).await;
    assert_eq!(code, 403);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .ends_with("cannot list resource \"sparkapplications\" in API group \"spark.apache.org\" at the cluster scope"),
        "{body}"
    );

    let (code, _) = gateway
        .send(Method::DELETE, &format!("{}/pi", apps(JOBS)), None)
        .await;
    assert_eq!(code, 200);
    assert_eq!(gateway.get(&format!("{}/pi", apps(JOBS))).await.0, 404);
    emulator.shutdown().await;
}

#[tokio::test]
async fn the_watcher_account_reads_and_patches_applications_everywhere_reads_driver_logs_and_holds_only_its_lease()
 {
    let emulator = start().await;
    let admin = Client {
        base: emulator.base_url(),
        token: Some(emulator.token()),
    };
    let watcher = client(&emulator, WATCHER);
    assert_eq!(
        admin
            .send(Method::POST, &apps("spark-jobs"), Some((JSON, app("pi"))))
            .await
            .0,
        201
    );
    assert_eq!(
        watcher
            .get("/apis/spark.apache.org/v1/sparkapplications")
            .await
            .0,
        200
    );
    // Only the status line of the watch: its body streams until the connection closes.
    let watch = reqwest::Client::new()
        .get(format!(
            "{}/apis/spark.apache.org/v1/sparkapplications?watch=true",
            emulator.base_url()
        ))
        .bearer_auth(watcher.token.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(watch.status().as_u16(), 200);
    drop(watch);
    let pi = format!("{}/pi", apps("spark-jobs"));
    let annotate =
        json!({"metadata": {"annotations": {"spark-gateway.io/published-through": "1"}}});
    assert_eq!(
        watcher
            .send(Method::PATCH, &pi, Some((MERGE, annotate)))
            .await
            .0,
        200
    );
    let (code, _) = watcher
        .send(Method::PUT, &pi, Some((JSON, app("pi"))))
        .await;
    assert_eq!(code, 403, "the watcher never updates");
    assert_eq!(watcher.send(Method::DELETE, &pi, None).await.0, 403);

    let own = "spark-gateway-watcher";
    let created = watcher
        .send(
            Method::POST,
            &leases("spark-gateway"),
            Some((JSON, lease(own))),
        )
        .await;
    assert_eq!(created.0, 201, "{}", created.1);
    let named = format!("{}/{own}", leases("spark-gateway"));
    let (code, mut current) = watcher.get(&named).await;
    assert_eq!(code, 200);
    current["spec"]["holderIdentity"] = json!("pod-a");
    assert_eq!(
        watcher
            .send(Method::PUT, &named, Some((JSON, current)))
            .await
            .0,
        200
    );
    let (code, body) = watcher
        .get(&format!("{}/another", leases("spark-gateway")))
        .await;
    assert_eq!(code, 403, "get is limited to resourceNames");
    assert_eq!(
        body["message"],
        "leases.coordination.k8s.io \"another\" is forbidden: User \"system:serviceaccount:spark-gateway:spark-gateway-watcher\" cannot get resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"spark-gateway\""
    );
    assert_eq!(
        watcher.get(&leases("spark-gateway")).await.0,
        403,
        "a list has no name, so resourceNames never allow it"
    );
    assert_eq!(
        watcher
            .send(Method::POST, &leases("default"), Some((JSON, lease(own))))
            .await
            .0,
        403,
        "the lease Role is bound in the watcher's namespace only"
    );

    // A failed driver's log, and nothing else of pods: kube-apiserver authorizes `pods/log` as its
    // own resource, so `get` on it grants neither the pod nor its siblings.
    let driver = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pi-0-driver"},
        "spec": {"nodeName": "node-1", "containers": [{"name": "spark-kubernetes-driver", "image": "apache/spark"}]}});
    let pods = "/api/v1/namespaces/spark-jobs/pods";
    assert_eq!(
        admin.send(Method::POST, pods, Some((JSON, driver))).await.0,
        201
    );
    let (code, body) = watcher.get(&format!("{pods}/pi-0-driver/log")).await;
    assert_eq!((code, body), (200, json!("")));
    let (code, body) = watcher.get(&format!("{pods}/pi-0-driver")).await;
    assert_eq!(code, 403, "the pod itself is not the watcher's: {body}");
    assert_eq!(watcher.get(pods).await.0, 403);
    assert_eq!(
        watcher.get(&format!("{pods}/pi-0-driver/exec")).await.0,
        403
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn anonymous_requests_see_only_public_info_and_unknown_tokens_get_401() {
    let emulator = start().await;
    let anonymous = Client {
        base: emulator.base_url(),
        token: None,
    };
    assert_eq!(anonymous.get("/version").await.0, 200);
    assert_eq!(anonymous.get("/readyz").await, (200, json!("ok")));
    let (code, body) = anonymous.get("/api").await;
    assert_eq!(code, 403);
    assert_eq!(
        body,
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "forbidden: User \"system:anonymous\" cannot get path \"/api\"",
            "reason": "Forbidden",
            "details": {},
            "code": 403
        })
    );
    let (code, body) = anonymous.get("/api/v1/namespaces/spark-jobs").await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        "namespaces \"spark-jobs\" is forbidden: User \"system:anonymous\" cannot get resource \"namespaces\" in API group \"\" in the namespace \"spark-jobs\""
    );
    let account = client(&emulator, GATEWAY);
    assert_eq!(account.get("/apis").await.0, 200, "system:discovery");
    assert_eq!(account.get("/api/v1").await.0, 200);
    let unknown = Client {
        base: emulator.base_url(),
        token: Some("nobody-issued-this".into()),
    };
    let (code, body) = unknown.get("/version").await;
    assert_eq!((code, body["reason"].as_str()), (401, Some("Unauthorized")));
    emulator.shutdown().await;
}

#[tokio::test]
async fn service_account_tokens_can_be_minted_through_the_admin_api() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = EmulatorConfig::for_tests()
        .plain_http()
        .with_namespace(JOBS)
        .with_rbac_manifest(RbacManifest::new(repo_file(
            "infra/kind/gateway-access.yaml",
        )));
    config.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    let emulator = kube_emulator::start(config).await.unwrap();
    let admin = format!("http://{}", emulator.admin_addr().unwrap());
    let minted = reqwest::Client::new()
        .post(format!("{admin}/tokens"))
        .json(&json!({"token": "sa-token", "service_account": {"namespace": GATEWAY.0, "name": GATEWAY.1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(minted.status().as_u16(), 201);
    let gateway = Client {
        base: emulator.base_url(),
        token: Some("sa-token".into()),
    };
    assert_eq!(gateway.get(&format!("{}/x", apps(JOBS))).await.0, 404);
    assert_eq!(
        gateway.get(&format!("{}?watch=true", apps(JOBS))).await.0,
        403
    );
    emulator.shutdown().await;
}
