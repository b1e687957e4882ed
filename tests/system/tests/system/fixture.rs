//! A private cluster with its own bearer token in OpenBao, and the gateway configuration that reaches it
//! with the AppRole credentials from LocalStack Secrets Manager: what the gateway and handler tests
//! share.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::Result;
use kube::api::{Api, DynamicObject};
use spark_gateway::approle::{AnyCredentials, SecretsManagerCredentials};
use spark_gateway::cluster::KubeClusters;
use spark_gateway::config::{AppRoleSource, ClusterConfig, ClustersConfig, VaultConfig};
use spark_gateway::vault::VaultTokens;
use spark_gateway::{Gateway, GatewayConfig};
use spark_gateway_core::Policy;
use spark_gateway_events::{
    ApplicationStateChanged, CloudEvent, CompletionEvent, RequestId, SubmitJobRequest, decode,
    decode_completion_event,
};
use spark_gateway_harness::aws::localstack_config;
use spark_gateway_harness::kafka::TopicReader;
use spark_gateway_harness::world::repo_root;
use spark_gateway_harness::{
    GATEWAY_ACCOUNT, LocalWorld, SimDefaults, TestCluster, WATCHER_ACCOUNT, unique_name,
};

pub const CLUSTER: &str = "dev";
pub const NAMESPACE: &str = "sjns-data-control";

pub type TestGateway = Gateway<KubeClusters<VaultTokens<AnyCredentials>>>;

/// A private cluster, its own bearer token stored at a path of its own in OpenBao, and a gateway
/// configured for it with the AppRole credentials from Secrets Manager.
pub struct Fixture {
    pub world: LocalWorld,
    pub cluster: TestCluster,
    pub token_path: String,
    pub gateway_token: String,
    /// The cluster's policy, for the in-process gateway and the functions' environment alike.
    pub policy: Policy,
}

/// The policy tests run under unless they choose another: the fixture's namespace, Apache Spark images.
pub fn default_policy() -> Policy {
    Policy::allowing_namespaces([NAMESPACE]).with_image_prefixes(["apache/spark:"])
}

impl Fixture {
    pub async fn start() -> Result<Self> {
        Self::start_with(None).await
    }

    /// [`Self::start`] with this simulator configuration (real Spark, for one) instead of the
    /// scripted default.
    pub async fn start_with(sim: Option<operator_sim::SimConfig>) -> Result<Self> {
        spark_gateway_harness::init_tracing();
        spark_gateway::install_crypto_provider();
        let world = LocalWorld::from_env()?;
        // The watcher's namespace too (its Lease), for the tests that run it.
        let namespaces = [NAMESPACE, WATCHER_ACCOUNT.0];
        let cluster = match sim {
            Some(sim) => TestCluster::start_with(&namespaces, sim).await?,
            None => TestCluster::start(&namespaces, SimDefaults::default()).await?,
        };
        // The gateway's own account, with exactly the permissions the repository deploys for it.
        let gateway_token = cluster.service_account_token(GATEWAY_ACCOUNT);
        let token_path = format!("spark-gateway/tests/{}/token", unique_name("cluster"));
        let fixture = Self {
            world,
            cluster,
            token_path,
            gateway_token,
            policy: default_policy(),
        };
        fixture.store_token(&fixture.gateway_token.clone()).await?;
        Ok(fixture)
    }

    /// Writes the cluster token to OpenBao with the root token (what an operator rotating it does).
    pub async fn store_token(&self, token: &str) -> Result<()> {
        let root = vaultrs::client::VaultClient::new(
            vaultrs::client::VaultClientSettingsBuilder::default()
                .address(self.world.vault_addr()?)
                .token(self.world.var("VAULT_TOKEN")?)
                .build()?,
        )?;
        vaultrs::kv2::set(
            &root,
            "secret",
            &self.token_path,
            &HashMap::from([("token", token)]),
        )
        .await?;
        Ok(())
    }

    pub fn cluster_config(&self) -> ClusterConfig {
        ClusterConfig {
            proxy_url: self.cluster.url(),
            ca_file: Some(self.cluster.ca_file()),
            token_path: self.token_path.clone(),
            token_key: "token".into(),
            kv_mount: "secret".into(),
            policy: self.policy.clone(),
            links: Default::default(),
            allow_delete_unmanaged: false,
            request_timeout_seconds: 10,
            allow_insecure_http: false,
        }
    }

    pub fn clusters(&self) -> ClustersConfig {
        ClustersConfig {
            default_cluster: CLUSTER.into(),
            clusters: BTreeMap::from([(CLUSTER.to_string(), self.cluster_config())]),
        }
    }

    pub fn vault_config(&self, addr: &str) -> VaultConfig {
        VaultConfig {
            addr: addr.to_string(),
            approle_mount: "approle".into(),
            ca_file: None,
            timeout: Duration::from_secs(3),
        }
    }

    /// The whole gateway configuration, as the Lambda functions and the consumer read it.
    pub fn gateway_config(&self) -> Result<GatewayConfig> {
        Ok(GatewayConfig {
            clusters: self.clusters(),
            vault: self.vault_config(self.world.vault_addr()?),
            approle: AppRoleSource::SecretsManager(
                self.world
                    .var("SPARK_GATEWAY_APPROLE_SECRET_ID")?
                    .to_string(),
            ),
        })
    }

    pub async fn gateway_with(
        &self,
        vault_addr: &str,
        approle_secret: &str,
    ) -> Result<TestGateway> {
        let aws = localstack_config(&self.world).await?;
        let credentials = AnyCredentials::SecretsManager(SecretsManagerCredentials::new(
            aws_sdk_secretsmanager::Client::new(&aws),
            approle_secret,
        ));
        Ok(Gateway::new(
            self.clusters(),
            KubeClusters::new(VaultTokens::new(self.vault_config(vault_addr), credentials)),
        ))
    }

    pub async fn gateway(&self) -> Result<TestGateway> {
        self.gateway_with(
            self.world.vault_addr()?,
            self.world.var("SPARK_GATEWAY_APPROLE_SECRET_ID")?,
        )
        .await
    }

    /// The environment a Lambda function or the consumer needs to reach this fixture's world, as a
    /// deployment would set it.
    pub fn function_env(&self, events_topic: &str, dlq_url: &str) -> Result<Vec<(String, String)>> {
        let clusters = serde_json::json!({
            "default_cluster": CLUSTER,
            "clusters": {CLUSTER: {
                "proxy_url": self.cluster.url(),
                "ca_file": self.cluster.ca_file(),
                "token_path": self.token_path,
                "policy": self.policy,
            }},
        });
        let world = &self.world;
        let mut env = vec![
            ("SPARK_GATEWAY_CLUSTERS".to_string(), clusters.to_string()),
            ("VAULT_ADDR".to_string(), world.vault_addr()?.to_string()),
            (
                "SPARK_GATEWAY_APPROLE_SECRET_ID".to_string(),
                world.var("SPARK_GATEWAY_APPROLE_SECRET_ID")?.to_string(),
            ),
            (
                "KAFKA_BOOTSTRAP_SERVERS".to_string(),
                world.kafka_bootstrap()?.to_string(),
            ),
            (
                "SPARK_GATEWAY_EVENTS_TOPIC".to_string(),
                events_topic.to_string(),
            ),
            ("SPARK_GATEWAY_DLQ_URL".to_string(), dlq_url.to_string()),
        ];
        for name in [
            "AWS_ENDPOINT_URL",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_REGION",
        ] {
            env.push((name.to_string(), world.var(name)?.to_string()));
        }
        Ok(env)
    }

    /// The watcher binary as deployed: its own service account, the gateway's name for the cluster,
    /// this fixture's namespace, publishing to `topic`, with `extra` flags and environment; its log
    /// goes to `log`. Stopped when the returned child is dropped.
    pub fn spawn_watcher(
        &self,
        topic: &str,
        identity: &str,
        extra: &[&str],
        env: &[(String, String)],
        log: &std::path::Path,
    ) -> Result<tokio::process::Child> {
        use anyhow::Context;
        let kubeconfig = self
            .cluster
            .write_kubeconfig(&self.cluster.service_account_token(WATCHER_ACCOUNT))?;
        tokio::process::Command::new(spark_gateway_harness::workspace_binary(
            "spark-gateway-watcher",
        )?)
        .arg("run")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--namespace", NAMESPACE, "--cluster", CLUSTER])
        .args(["--kafka-bootstrap-servers", self.world.kafka_bootstrap()?])
        .args(["--topic", topic])
        .args([
            "--lease-namespace",
            WATCHER_ACCOUNT.0,
            "--identity",
            identity,
        ])
        .args(["--listen", "127.0.0.1:0", "--log-format", "text"])
        .args(extra)
        .envs(env.iter().cloned())
        .env_remove("WATCHER_NO_FINALIZER")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .kill_on_drop(true)
        .spawn()
        .context("the watcher binary starts")
    }

    /// The first state change on `topic` that carries an outcome (the watcher's terminal event),
    /// waiting up to `within`; the watcher's `log` is shown when it does not come.
    pub async fn terminal_event(
        &self,
        topic: &str,
        within: Duration,
        log: &std::path::Path,
    ) -> Result<CloudEvent<ApplicationStateChanged>> {
        use anyhow::Context;
        let reader = TopicReader::new(self.world.kafka_bootstrap()?, topic)?;
        let records = reader
            .read_until(within, |records| {
                records.iter().any(|r| r.value.contains("\"outcome\""))
            })
            .await
            .with_context(|| {
                format!(
                    "watcher log: {}",
                    std::fs::read_to_string(log).unwrap_or_default()
                )
            })?;
        records
            .iter()
            .find_map(
                |r| match decode_completion_event(r.value.as_bytes()).ok()? {
                    CompletionEvent::StateChanged(event) if event.data.outcome.is_some() => {
                        Some(event)
                    }
                    _ => None,
                },
            )
            .context("a terminal event")
    }

    pub async fn apps(&self) -> Result<Api<DynamicObject>> {
        Ok(Api::namespaced_with(
            self.cluster.client().await?,
            NAMESPACE,
            &operator_sim::api_resource(),
        ))
    }

    /// Waits until `namespace/name` exists (or, with `present == false`, is gone).
    pub async fn wait_for_app(&self, name: &str, present: bool) -> Result<()> {
        let apps = self.apps().await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while apps.get_opt(name).await?.is_some() != present {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "{name} present={} after 30 s",
                !present
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }
}

/// The seed's pi-test request with a fresh request id and name.
pub fn seed_request() -> Result<SubmitJobRequest> {
    let path = repo_root().join("events-schema/examples/submit-job-request.v1/seed-pi-test.json");
    let mut request: SubmitJobRequest = decode(&std::fs::read(path)?)?;
    // A fresh request id and name per test, so tests share nothing.
    request.request_id = RequestId::new(unique_name("req"))?;
    request.application_name = unique_name("pi-test");
    Ok(request)
}

/// Chooses the simulator's scenario for the application, with 100 ms steps.
pub fn with_scenario(mut request: SubmitJobRequest, scenario: &str) -> SubmitJobRequest {
    request.labels.insert(
        "operator-sim.spark-gateway.io/scenario".into(),
        scenario.into(),
    );
    request.labels.insert(
        "operator-sim.spark-gateway.io/step-millis".into(),
        "100".into(),
    );
    request
}
