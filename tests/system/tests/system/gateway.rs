//! The submission service against real servers: AppRole credentials from LocalStack Secrets Manager,
//! the cluster token from OpenBao, and a private Kubernetes API emulator behind TLS with the operator
//! simulator.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use kube::api::{DynamicObject, PostParams};
use kube_emulator::ErrorRule;
use serde_json::Value;
use spark_gateway::approle::{AnyCredentials, CredentialsError, FileCredentials};
use spark_gateway::cluster::{ClusterError, KubeClusters};
use spark_gateway::vault::{VaultError, VaultTokens};
use spark_gateway::{Deleted, Gateway, GatewayError, Submitted};
use spark_gateway_core::{Classify, Disposition};
use spark_gateway_events::{
    ApplicationState, DeleteJobRequest, FailureReason, GetJobStatusRequest, GetJobStatusResponse,
    Outcome, Phase, RejectionReason, RequestId, SubmitJobRequest, decode,
};
use spark_gateway_harness::world::repo_root;
use spark_gateway_harness::{GATEWAY_ACCOUNT, unique_name};

use super::fixture::{Fixture, NAMESPACE, TestGateway, seed_request, with_scenario};

fn status_request(request: &SubmitJobRequest) -> GetJobStatusRequest {
    GetJobStatusRequest::by_name(&request.namespace, &request.application_name)
}

fn delete_request(request: &SubmitJobRequest) -> Result<DeleteJobRequest> {
    Ok(DeleteJobRequest {
        request_id: RequestId::new(unique_name("del"))?,
        cluster: None,
        application_name: request.application_name.clone(),
        namespace: request.namespace.clone(),
        submitted_by: None,
        reason: None,
        traceparent: None,
    })
}

fn rejection(error: &GatewayError) -> Option<RejectionReason> {
    match error {
        GatewayError::Rejected { reason, .. } => Some(*reason),
        _ => None,
    }
}

/// Polls the status until `done` holds; returns every answer seen.
async fn follow_status(
    gateway: &TestGateway,
    request: &GetJobStatusRequest,
    done: impl Fn(&GetJobStatusResponse) -> bool,
) -> Result<Vec<GetJobStatusResponse>> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = gateway.status(request).await?;
        let finished = done(&status);
        seen.push(status);
        if finished {
            return Ok(seen);
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "status did not reach the expected point in 30 s; last: {:?}",
                seen.last()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A Vault that cannot be reached is an outage: transient, not the deployment's configuration.
fn assert_vault_unavailable(error: &GatewayError) {
    assert!(
        matches!(
            error,
            GatewayError::Cluster(ClusterError::Token(VaultError::Unavailable { .. }))
        ),
        "{error:?}"
    );
    assert!(error.disposition().is_transient());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_pi_test_creates_exactly_its_golden_spark_application() -> Result<()> {
    let fixture = Fixture::start().await?;
    let gateway = fixture.gateway().await?;
    let path = repo_root().join("events-schema/examples/submit-job-request.v1/seed-pi-test.json");
    let request: SubmitJobRequest = decode(&std::fs::read(path)?)?;
    let submitted = gateway.submit(&request).await?;
    assert!(
        matches!(submitted, Submitted::Created { .. }),
        "{submitted:?}"
    );

    let golden: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(
        repo_root().join("functions/core/tests/golden/pi-test.yaml"),
    )?)?;
    let stored = fixture.apps().await?.get("pi-test").await?;
    let stored = serde_json::to_value(&stored)?;
    // The CRD defaults resourceRetainDurationMillis to -1 (retain forever); the gateway writes the
    // policy's bound instead, so the API server adds nothing and the stored spec is the golden one.
    assert_eq!(
        stored["spec"]["applicationTolerations"]["resourceRetainDurationMillis"],
        serde_json::json!(604_800_000),
        "retention bounded by the policy"
    );
    assert_eq!(
        stored["spec"], golden["spec"],
        "spec differs from the golden file"
    );
    for key in ["labels", "annotations"] {
        let golden_map = golden["metadata"][key]
            .as_object()
            .context("golden metadata")?;
        for (k, v) in golden_map {
            assert_eq!(&stored["metadata"][key][k], v, "metadata.{key}.{k}");
        }
    }
    assert_eq!(stored["metadata"]["name"], "pi-test");
    assert_eq!(stored["metadata"]["namespace"], NAMESPACE);
    fixture.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_delivery_creates_one_application_and_another_request_id_conflicts() -> Result<()>
{
    let fixture = Fixture::start().await?;
    let gateway = fixture.gateway().await?;
    let request = with_scenario(seed_request()?, "stuck");

    let first = gateway.submit(&request).await?;
    let second = gateway.submit(&request).await?;
    let Submitted::Created { uid } = first else {
        bail!("first delivery was {first:?}")
    };
    assert_eq!(second, Submitted::Duplicate { uid: uid.clone() });
    let apps = fixture.apps().await?.list(&Default::default()).await?;
    assert_eq!(
        apps.items
            .iter()
            .filter(|a| a.metadata.name.as_deref() == Some(&request.application_name))
            .count(),
        1
    );

    let mut other = request.clone();
    other.request_id = RequestId::new(unique_name("other"))?;
    let error = gateway.submit(&other).await.unwrap_err();
    assert_eq!(
        rejection(&error),
        Some(RejectionReason::Conflict),
        "{error}"
    );
    assert!(!error.disposition().is_transient());
    assert!(
        error.to_string().contains(request.request_id.as_str()),
        "{error}"
    );
    fixture.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_rotated_mid_run_is_reread_from_vault() -> Result<()> {
    let fixture = Fixture::start().await?;
    let gateway = fixture.gateway().await?;
    gateway
        .submit(&with_scenario(seed_request()?, "stuck"))
        .await?;

    let rotated = fixture.cluster.service_account_token(GATEWAY_ACCOUNT);
    assert!(
        fixture
            .cluster
            .control()
            .revoke_token(&fixture.gateway_token)
    );
    fixture.store_token(&rotated).await?;

    // The cached token now gets 401; the gateway must re-read Vault and succeed without an error.
    let requests_before = fixture
        .cluster
        .control()
        .stats()
        .requests
        .values()
        .sum::<u64>();
    let submitted = gateway
        .submit(&with_scenario(seed_request()?, "stuck"))
        .await?;
    assert!(
        matches!(submitted, Submitted::Created { .. }),
        "{submitted:?}"
    );
    let requests_after = fixture
        .cluster
        .control()
        .stats()
        .requests
        .values()
        .sum::<u64>();
    assert!(
        requests_after >= requests_before + 2,
        "expected the refused call and its retry"
    );
    fixture.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_unreachable_is_a_transient_error() -> Result<()> {
    let fixture = Fixture::start().await?;
    // Nothing listens on this port: exactly what a stopped Vault looks like to a client.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let gateway = fixture
        .gateway_with(
            &format!("http://{closed}"),
            fixture.world.var("SPARK_GATEWAY_APPROLE_SECRET_ID")?,
        )
        .await?;
    let error = gateway.submit(&seed_request()?).await.unwrap_err();
    assert_vault_unavailable(&error);
    fixture.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_credentials_secret_is_a_clear_configuration_error() -> Result<()> {
    let fixture = Fixture::start().await?;
    let missing = unique_name("spark-gateway/no-such-secret");
    let gateway = fixture
        .gateway_with(fixture.world.vault_addr()?, &missing)
        .await?;
    let error = gateway.submit(&seed_request()?).await.unwrap_err();
    assert!(
        matches!(
            &error,
            GatewayError::Cluster(ClusterError::Token(VaultError::Credentials(
                CredentialsError::NotFound { .. }
            )))
        ),
        "{error:?}"
    );
    assert_eq!(error.disposition(), Disposition::Configuration);
    // The causes are kept as `#[source]`s; the whole chain names the secret.
    let chain = spark_gateway_core::error_chain(&error);
    assert!(chain.contains(&missing), "{chain}");
    // Not the request's fault: it must wait for the fix, not be rejected.
    assert!(error.disposition().is_retried());
    fixture.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_twice_succeeds_twice() -> Result<()> {
    let fixture = Fixture::start().await?;
    let gateway = fixture.gateway().await?;
    let request = with_scenario(seed_request()?, "stuck");
    let Submitted::Created { uid } = gateway.submit(&request).await? else {
        bail!("not created")
    };
    follow_status(&gateway, &status_request(&request), |s| {
        s.state == Some(ApplicationState::RunningHealthy)
    })
    .await?;

    assert_eq!(
        gateway.delete(&delete_request(&request)?).await?,
        Deleted::Deleted { uid }
    );
    // The simulator records the shutdown, then releases its finalizer; the object disappears.
    fixture
        .wait_for_app(&request.application_name, false)
        .await?;
    assert_eq!(
        gateway.delete(&delete_request(&request)?).await?,
        Deleted::AlreadyGone
    );
    fixture.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_application_the_gateway_did_not_create_is_refused() -> Result<()> {
    let fixture = Fixture::start().await?;
    let gateway = fixture.gateway().await?;
    let request = seed_request()?;
    let foreign: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "spark.apache.org/v1", "kind": "SparkApplication",
        "metadata": {"name": request.application_name, "namespace": NAMESPACE},
        "spec": {"runtimeVersions": {"sparkVersion": "4.1.0"}},
    }))?;
    fixture
        .apps()
        .await?
        .create(&PostParams::default(), &foreign)
        .await?;
    let error = gateway
        .delete(&delete_request(&request)?)
        .await
        .unwrap_err();
    assert_eq!(
        rejection(&error),
        Some(RejectionReason::Forbidden),
        "{error}"
    );
    assert!(
        fixture
            .apps()
            .await?
            .get_opt(&request.application_name)
            .await?
            .is_some()
    );
    fixture.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_follows_a_successful_lifecycle_and_keeps_the_outcome_after_release() -> Result<()> {
    let fixture = Fixture::start().await?;
    let gateway = fixture.gateway().await?;
    let request = with_scenario(seed_request()?, "success");
    gateway.submit(&request).await?;
    let seen = follow_status(&gateway, &status_request(&request), |s| {
        s.state == Some(ApplicationState::ResourceReleased)
    })
    .await?;
    let last = seen.last().expect("at least one answer");
    assert_eq!(last.outcome, Some(Outcome::Succeeded));
    assert_eq!(
        last.request_id.as_deref(),
        Some(request.request_id.as_str())
    );
    let states: Vec<ApplicationState> = last.history.iter().map(|h| h.state).collect();
    assert_eq!(states, spark_gateway_core::apache_v1::HAPPY_PATH);
    assert!(
        seen.iter().any(|s| s.outcome.is_none()),
        "never saw the application before its end"
    );
    fixture.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_failure_after_release() -> Result<()> {
    let fixture = Fixture::start().await?;
    let gateway = fixture.gateway().await?;
    let mut request = with_scenario(seed_request()?, "failure");
    // The seed retains resources on failure; release them so the application reaches ResourceReleased.
    request.application_tolerations = None;
    gateway.submit(&request).await?;
    let seen = follow_status(&gateway, &status_request(&request), |s| {
        s.phase == Some(Phase::Ended)
    })
    .await?;
    let last = seen.last().expect("at least one answer");
    assert_eq!(last.state, Some(ApplicationState::ResourceReleased));
    assert_eq!(last.phase, Some(Phase::Ended));
    assert!(
        matches!(
            last.outcome,
            Some(Outcome::Failed {
                reason: FailureReason::Failed,
                ..
            })
        ),
        "{:?}",
        last.outcome
    );
    fixture.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_violations_and_missing_namespaces_are_permanent_and_create_nothing() -> Result<()> {
    let fixture = Fixture::start().await?;
    let gateway = fixture.gateway().await?;
    let mut bad = seed_request()?;
    bad.spark_conf
        .insert("spark.master".into(), "local[*]".into());
    bad.executor.as_mut().unwrap().instances = Some(10_000);
    let error = gateway.submit(&bad).await.unwrap_err();
    let GatewayError::Rejected {
        reason, violations, ..
    } = &error
    else {
        bail!("{error:?}")
    };
    assert_eq!(*reason, RejectionReason::PolicyViolation);
    assert_eq!(violations.len(), 2, "{violations:?}");

    let mut elsewhere = seed_request()?;
    elsewhere.cluster = Some("prod".into());
    assert_eq!(
        rejection(&gateway.submit(&elsewhere).await.unwrap_err()),
        Some(RejectionReason::UnknownCluster)
    );
    assert!(
        fixture
            .apps()
            .await?
            .list(&Default::default())
            .await?
            .items
            .is_empty()
    );
    fixture.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_errors_are_transient_and_succeed_on_retry() -> Result<()> {
    let fixture = Fixture::start().await?;
    let gateway = fixture.gateway().await?;
    let request = with_scenario(seed_request()?, "stuck");
    for code in [500, 429] {
        // One failure: the gateway must surface it rather than retry behind the queue's back.
        fixture
            .cluster
            .control()
            .inject_errors(ErrorRule::next("create", code, 1));
        let error = gateway.submit(&request).await.unwrap_err();
        assert!(error.disposition().is_transient(), "{code}: {error}");
        assert!(
            error.to_string().contains(&code.to_string()),
            "{code}: {error}"
        );
        fixture.cluster.control().clear_faults();
    }
    assert!(matches!(
        gateway.submit(&request).await?,
        Submitted::Created { .. }
    ));
    fixture.cluster.shutdown().await;
    Ok(())
}

/// An OpenBao dev server of one test's own, set up like the local world's (AppRole `spark-gateway`
/// allowed to read the fixture's token path), so the test can stop it.
struct PrivateVault {
    process: tokio::process::Child,
    addr: String,
    credentials: tempfile::NamedTempFile,
}

impl PrivateVault {
    async fn start(fixture: &Fixture) -> Result<Self> {
        let bao = std::path::Path::new(fixture.world.var("SPARK_GATEWAY_TOOLS_BIN")?).join("bao");
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = format!("http://127.0.0.1:{port}");
        let root = unique_name("root");
        let process = tokio::process::Command::new(&bao)
            .args(["server", "-dev", &format!("-dev-root-token-id={root}")])
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bao.display()))?;
        let client = vaultrs::client::VaultClient::new(
            vaultrs::client::VaultClientSettingsBuilder::default()
                .address(&addr)
                .token(&root)
                .build()?,
        )?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while vaultrs::sys::auth::enable(&client, "approle", "approle", None)
            .await
            .is_err()
        {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "private OpenBao did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let policy = format!(
            "path \"secret/data/{}\" {{ capabilities = [\"read\"] }}",
            fixture.token_path
        );
        vaultrs::sys::policy::set(&client, "spark-gateway", &policy).await?;
        let mut role = vaultrs::api::auth::approle::requests::SetAppRoleRequest::builder();
        role.token_policies(vec!["spark-gateway".to_string()]);
        vaultrs::auth::approle::role::set(&client, "approle", "spark-gateway", Some(&mut role))
            .await?;
        let role_id = vaultrs::auth::approle::role::read_id(&client, "approle", "spark-gateway")
            .await?
            .role_id;
        let secret_id = vaultrs::auth::approle::role::secret::generate(
            &client,
            "approle",
            "spark-gateway",
            None,
        )
        .await?
        .secret_id;
        vaultrs::kv2::set(
            &client,
            "secret",
            &fixture.token_path,
            &std::collections::HashMap::from([("token", fixture.gateway_token.as_str())]),
        )
        .await?;
        let credentials = tempfile::NamedTempFile::new()?;
        std::fs::write(
            credentials.path(),
            serde_json::json!({"role_id": role_id, "secret_id": secret_id}).to_string(),
        )?;
        Ok(Self {
            process,
            addr,
            credentials,
        })
    }

    fn gateway(&self, fixture: &Fixture) -> TestGateway {
        let credentials = AnyCredentials::File(FileCredentials::new(self.credentials.path()));
        Gateway::new(
            fixture.clusters(),
            KubeClusters::new(VaultTokens::new(
                fixture.vault_config(&self.addr),
                credentials,
            )),
        )
    }

    async fn stop(&mut self) -> Result<()> {
        self.process.kill().await?;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_vault_is_a_transient_error_once_the_token_must_be_reread() -> Result<()> {
    let fixture = Fixture::start().await?;
    let mut vault = PrivateVault::start(&fixture).await?;
    let gateway = vault.gateway(&fixture);
    assert!(matches!(
        gateway
            .submit(&with_scenario(seed_request()?, "stuck"))
            .await?,
        Submitted::Created { .. }
    ));

    vault.stop().await?;
    // The cached cluster token keeps working while Vault is down...
    assert!(matches!(
        gateway
            .submit(&with_scenario(seed_request()?, "stuck"))
            .await?,
        Submitted::Created { .. }
    ));
    // ...until the proxy refuses it (rotated: a new token exists, not yet in Vault) and it must be
    // read again.
    fixture.cluster.service_account_token(GATEWAY_ACCOUNT);
    fixture
        .cluster
        .control()
        .revoke_token(&fixture.gateway_token);
    let error = gateway
        .submit(&with_scenario(seed_request()?, "stuck"))
        .await
        .unwrap_err();
    assert_vault_unavailable(&error);
    fixture.cluster.shutdown().await;
    Ok(())
}
