//! The gateway under the RBAC the repository deploys, and under a copy missing one verb: the emulator
//! authorizes like kube-apiserver's RBAC authorizer, so a verb the manifests forget fails here with the
//! real server's 403 rather than first on a real cluster. What is pinned: the gateway treats that 403 as
//! a permanent `Forbidden` rejection and does not re-read its token (it does that on 401 only).

use anyhow::{Context, Result};
use kube::api::{Api, DeleteParams};
use serde::Deserialize;
use serde_json::Value;
use spark_gateway::GatewayError;
use spark_gateway_core::{Classify, Disposition};
use spark_gateway_events::{DeleteJobRequest, RejectionReason, RequestId};
use spark_gateway_harness::cluster::client_for;
use spark_gateway_harness::world::repo_root;
use spark_gateway_harness::{
    GATEWAY_ACCOUNT, LocalWorld, SimDefaults, TestCluster, deployed_rbac, unique_name,
};

use super::fixture::{Fixture, NAMESPACE, default_policy, seed_request, with_scenario};

const GATEWAY_ACCESS: &str = "infra/kind/gateway-access.yaml";

/// A copy of `infra/kind/gateway-access.yaml` whose Role lacks `verb`; every other document unchanged.
fn gateway_access_without(verb: &str, dir: &std::path::Path) -> Result<std::path::PathBuf> {
    let text = std::fs::read_to_string(repo_root().join(GATEWAY_ACCESS))?;
    let mut documents = Vec::new();
    let mut removed = 0;
    for document in serde_yaml_ng::Deserializer::from_str(&text) {
        let mut value = Value::deserialize(document)?;
        if value["kind"] == "Role" {
            for rule in value["rules"].as_array_mut().into_iter().flatten() {
                if let Some(verbs) = rule["verbs"].as_array_mut() {
                    let before = verbs.len();
                    verbs.retain(|v| v != verb);
                    removed += before - verbs.len();
                }
            }
        }
        documents.push(serde_yaml_ng::to_string(&value)?);
    }
    anyhow::ensure!(
        removed == 1,
        "{GATEWAY_ACCESS} grants {verb:?} {removed} times, not once"
    );
    let path = dir.join("gateway-access.yaml");
    std::fs::write(&path, documents.join("---\n"))?;
    Ok(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_without_delete_makes_the_gateways_delete_a_permanent_403_without_a_token_reread()
-> Result<()> {
    spark_gateway_harness::init_tracing();
    spark_gateway::install_crypto_provider();
    let dir = tempfile::tempdir()?;
    let mut rbac = deployed_rbac();
    let access = rbac
        .iter_mut()
        .find(|m| m.path.ends_with(GATEWAY_ACCESS))
        .context("the deployed RBAC includes the gateway's access")?;
    access.path = gateway_access_without("delete", dir.path())?;
    let cluster = TestCluster::start_with_rbac(
        &[NAMESPACE],
        operator_sim::SimConfig {
            defaults: operator_sim::Settings {
                scenario: SimDefaults::default().scenario,
                step: SimDefaults::default().step,
            },
            ..operator_sim::SimConfig::default()
        },
        rbac,
    )
    .await?;
    let gateway_token = cluster.service_account_token(GATEWAY_ACCOUNT);
    let fixture = Fixture {
        world: LocalWorld::from_env()?,
        cluster,
        token_path: format!("spark-gateway/tests/{}/token", unique_name("cluster")),
        gateway_token,
        policy: default_policy(),
    };
    fixture.store_token(&fixture.gateway_token).await?;
    let gateway = fixture.gateway().await?;

    // create and get are still granted.
    let request = with_scenario(seed_request()?, "stuck");
    gateway.submit(&request).await?;
    let deletes = |fixture: &Fixture| {
        let requests = fixture.cluster.control().stats().requests;
        requests.get("delete").copied().unwrap_or_default()
    };
    let before = deletes(&fixture);

    let error = gateway
        .delete(&DeleteJobRequest {
            request_id: RequestId::new(unique_name("del"))?,
            cluster: None,
            application_name: request.application_name.clone(),
            namespace: request.namespace.clone(),
            submitted_by: None,
            reason: None,
            traceparent: None,
        })
        .await
        .expect_err("delete is not granted");
    assert!(
        matches!(
            error,
            GatewayError::Rejected {
                reason: RejectionReason::Forbidden,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        error.disposition(),
        Disposition::Permanent(RejectionReason::Forbidden)
    );
    assert_eq!(
        deletes(&fixture) - before,
        1,
        "one delete: a 403 is not retried with a token read again from Vault"
    );
    assert!(
        fixture
            .apps()
            .await?
            .get_opt(&request.application_name)
            .await?
            .is_some(),
        "the application is still there"
    );

    // The answer the gateway got: the real server's 403 for this account and verb.
    let as_gateway: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client_for(
            &fixture.cluster.url(),
            &fixture.cluster.ca_file(),
            &fixture.gateway_token,
        )?,
        NAMESPACE,
        &operator_sim::api_resource(),
    );
    let status = match as_gateway
        .delete(&request.application_name, &DeleteParams::default())
        .await
    {
        Err(kube::Error::Api(status)) => status,
        other => anyhow::bail!("expected a 403, got {other:?}"),
    };
    assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        status.message,
        format!(
            "sparkapplications.spark.apache.org \"{}\" is forbidden: User \"system:serviceaccount:spark-gateway:spark-gateway\" cannot delete resource \"sparkapplications\" in API group \"spark.apache.org\" in the namespace \"{NAMESPACE}\"",
            request.application_name
        )
    );
    fixture.cluster.shutdown().await;
    Ok(())
}
