//! A private Kubernetes cluster for one test: the API emulator over TLS with the Apache SparkApplication
//! CRD, plus the operator simulator driving application status, both in-process. Tests get fresh state
//! and fault controls that affect nobody else.
//!
//! The emulator authorizes with the RBAC the repository deploys ([`deployed_rbac`]), so a component
//! given a [`TestCluster::service_account_token`] can do exactly what it could on a real cluster. The
//! admin token ([`TestCluster::client`]) is in `system:masters`: for the test's own setup and checks and
//! for the operator simulator, which stands in for the operator's own (much wider) role.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use kube_emulator::rbac::RbacManifest;
use kube_emulator::{Control, EmulatorConfig, RunningEmulator};
use operator_sim::{Scenario, Settings, SimConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// An emulator with the simulator attached.
pub struct TestCluster {
    emulator: RunningEmulator,
    simulator: Option<(oneshot::Sender<()>, JoinHandle<operator_sim::Result<()>>)>,
    dir: tempfile::TempDir,
    /// Where driver logs are: the emulator serves `pods/log` from here and the simulator writes here.
    pod_logs: std::path::PathBuf,
}

/// How the simulator treats applications without a scenario annotation.
#[derive(Debug, Clone, Copy)]
pub struct SimDefaults {
    /// The default scenario.
    pub scenario: Scenario,
    /// Delay between two states.
    pub step: Duration,
}

impl Default for SimDefaults {
    fn default() -> Self {
        Self {
            scenario: Scenario::Success,
            step: Duration::from_millis(100),
        }
    }
}

/// A ServiceAccount, as `(namespace, name)`.
pub type ServiceAccount = (&'static str, &'static str);

/// The account the gateway calls the cluster as in the kind flow (`infra/kind/gateway-access.yaml`).
pub const GATEWAY_ACCOUNT: ServiceAccount = ("spark-gateway", "spark-gateway");
/// The watcher's account (`infra/k8s/base/serviceaccount.yaml`, bound in `infra/k8s/base/rbac.yaml`).
pub const WATCHER_ACCOUNT: ServiceAccount = ("spark-gateway", "spark-gateway-watcher");

/// The repository's RBAC manifests for the gateway and the watcher: the watcher's
/// `infra/k8s/base/rbac.yaml` (its namespaced documents get `spark-gateway` from the kustomization
/// beside it) and the kind flow's `infra/kind/gateway-access.yaml`, the only place the repository
/// grants the gateway anything (in production the cluster proxy's own account does, outside the repo).
pub fn deployed_rbac() -> Vec<RbacManifest> {
    let root = crate::world::repo_root();
    vec![
        RbacManifest::new(root.join("infra/k8s/base/rbac.yaml")),
        RbacManifest::new(root.join("infra/kind/gateway-access.yaml")),
    ]
}

impl From<SimDefaults> for SimConfig {
    fn from(sim: SimDefaults) -> Self {
        Self {
            defaults: Settings {
                scenario: sim.scenario,
                step: sim.step,
            },
            ..Self::default()
        }
    }
}

/// How long a (re)started simulator may take to list the applications and be ready.
const SIMULATOR_READY: Duration = Duration::from_secs(30);

/// The emulator configuration of [`TestCluster::start_with_rbac`]: TLS, one random admin token, the
/// Apache Spark CRD, `namespaces` (and `default`), authorizing with `rbac`. A test wanting more (a
/// watch preset, say) changes it and starts it with [`TestCluster::start_on`].
pub fn emulator_config(namespaces: &[&str], rbac: Vec<RbacManifest>) -> EmulatorConfig {
    let config = namespaces
        .iter()
        .fold(EmulatorConfig::for_tests(), |config, namespace| {
            config.with_namespace(*namespace)
        });
    rbac.into_iter()
        .fold(config, EmulatorConfig::with_rbac_manifest)
}

impl TestCluster {
    /// Starts the emulator (TLS, one random admin token, the [`deployed_rbac`]) with `namespaces` and
    /// the simulator.
    pub async fn start(namespaces: &[&str], sim: SimDefaults) -> Result<Self> {
        Self::start_with(namespaces, sim.into()).await
    }

    /// [`Self::start`] with a whole simulator configuration (real Spark, for one).
    pub async fn start_with(namespaces: &[&str], sim: SimConfig) -> Result<Self> {
        Self::start_with_rbac(namespaces, sim, deployed_rbac()).await
    }

    /// [`Self::start_with`] authorizing with other RBAC manifests (a test changing a copy of them).
    pub async fn start_with_rbac(
        namespaces: &[&str],
        sim: SimConfig,
        rbac: Vec<RbacManifest>,
    ) -> Result<Self> {
        Self::start_on(emulator_config(namespaces, rbac), sim).await
    }

    /// Starts an emulator with exactly this configuration (it must serve TLS; see [`emulator_config`])
    /// and the simulator, and waits until the simulator is ready.
    pub async fn start_on(mut config: EmulatorConfig, sim: SimConfig) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        // The API server serves `pods/log` from the files the simulator's drivers write, as the
        // kubelet serves them from the node.
        let pod_logs = config
            .pod_log_dir
            .clone()
            .or_else(|| sim.log_dir())
            .unwrap_or_else(|| dir.path().join("pod-logs"));
        config.pod_log_dir = Some(pod_logs.clone());
        let emulator = kube_emulator::start(config)
            .await
            .context("starting the Kubernetes API emulator")?;
        std::fs::write(
            dir.path().join("ca.crt"),
            emulator.ca_pem().context("the emulator serves TLS")?,
        )?;
        let mut cluster = Self {
            emulator,
            simulator: None,
            dir,
            pod_logs,
        };
        cluster.start_simulator_with(sim).await?;
        Ok(cluster)
    }

    /// Starts the simulator (again), with an admin client of its own.
    pub async fn start_simulator(&mut self, sim: SimDefaults) -> Result<()> {
        self.start_simulator_with(sim.into()).await
    }

    /// Starts the simulator (again) with this configuration, stopping a running one first.
    pub async fn start_simulator_with(&mut self, mut config: SimConfig) -> Result<()> {
        self.stop_simulator().await;
        if config.log_dir().is_none() {
            config.pod_log_dir = Some(self.pod_logs.clone());
        }
        let client = self.client().await?;
        let (stop, stopped) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let ready = move || {
                let _ = ready_tx.send(());
            };
            let result = operator_sim::run_with_ready(client, config, ready, async {
                let _ = stopped.await;
            })
            .await;
            if let Err(error) = &result {
                tracing::error!(%error, "operator simulator stopped with an error");
            }
            result
        });
        tokio::time::timeout(SIMULATOR_READY, ready_rx)
            .await
            .with_context(|| {
                format!("operator simulator did not become ready in {SIMULATOR_READY:?}")
            })?
            .context("operator simulator exited before becoming ready")?;
        self.simulator = Some((stop, task));
        Ok(())
    }

    /// Stops the simulator (applications then stay in their current state).
    pub async fn stop_simulator(&mut self) {
        let _ = self.finish_simulator().await;
    }

    /// [`Self::stop_simulator`], saying how the simulator ended: an error if it failed or panicked
    /// (`Ok` too when none was running).
    pub async fn finish_simulator(&mut self) -> Result<()> {
        let Some((stop, task)) = self.simulator.take() else {
            return Ok(());
        };
        let _ = stop.send(());
        task.await
            .context("the operator simulator's task")?
            .context("the operator simulator")
    }

    /// The emulator.
    pub fn emulator(&self) -> &RunningEmulator {
        &self.emulator
    }

    /// Fault controls and token management.
    pub fn control(&self) -> Control {
        self.emulator.control()
    }

    /// The API URL.
    pub fn url(&self) -> String {
        self.emulator.base_url()
    }

    /// Where the driver pods' logs are (`<dir>/<namespace>/<pod>.log`).
    pub fn pod_log_dir(&self) -> &Path {
        &self.pod_logs
    }

    /// A file holding the emulator's CA certificate (PEM).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// A kubeconfig file for `token` (for `kubectl`).
    pub fn write_kubeconfig(&self, token: &str) -> Result<PathBuf> {
        let path = self
            .dir
            .path()
            .join(format!("kubeconfig-{}", crate::unique_name("t")));
        std::fs::write(&path, self.emulator.kubeconfig_yaml(token))?;
        Ok(path)
    }

    /// A new bearer token of a ServiceAccount, as a TokenRequest for it would return: it may do what
    /// the RBAC manifests grant the account, nothing more.
    pub fn service_account_token(&self, (namespace, name): ServiceAccount) -> String {
        let token = crate::unique_name(&format!("sa-{name}"));
        self.control()
            .add_service_account_token(&token, namespace, name);
        token
    }

    /// A kube client with the admin token.
    pub async fn client(&self) -> Result<kube::Client> {
        self.client_with_token(&self.emulator.token())
    }

    /// A kube client sending `token` (a [`Self::service_account_token`], say).
    pub fn client_with_token(&self, token: &str) -> Result<kube::Client> {
        client_for(&self.emulator.base_url(), &self.ca_file(), token)
    }

    /// Shuts everything down.
    pub async fn shutdown(mut self) {
        self.stop_simulator().await;
        self.emulator.shutdown().await;
    }
}

/// A kube client for `url` trusting the CA in `ca_file` and sending `token`.
pub fn client_for(url: &str, ca_file: &Path, token: &str) -> Result<kube::Client> {
    let pem = std::fs::read_to_string(ca_file)?;
    let der = pem_to_der(&pem).context("parsing the emulator CA")?;
    let mut config = kube::Config::new(url.parse()?);
    config.root_cert = Some(vec![der]);
    config.auth_info.token = Some(token.to_string().into());
    Ok(kube::Client::try_from(config)?)
}

fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .ok()
        .map(|c| c.to_vec())
}
