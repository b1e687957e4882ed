//! A private Kubernetes cluster for one test: the API emulator over TLS with the Apache SparkApplication
//! CRD, plus the operator simulator driving application status, both in-process. Tests get fresh state
//! and fault controls that affect nobody else.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use kube_emulator::{Control, EmulatorConfig, RunningEmulator};
use operator_sim::{Scenario, Settings, SimConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// An emulator with the simulator attached.
pub struct TestCluster {
    emulator: RunningEmulator,
    simulator: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
    dir: tempfile::TempDir,
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

impl TestCluster {
    /// Starts the emulator (TLS, one random admin token) with `namespaces` and the simulator.
    pub async fn start(namespaces: &[&str], sim: SimDefaults) -> Result<Self> {
        let mut config = EmulatorConfig::for_tests();
        for namespace in namespaces {
            config = config.with_namespace(*namespace);
        }
        let emulator = kube_emulator::start(config)
            .await
            .context("starting the Kubernetes API emulator")?;
        let dir = tempfile::tempdir()?;
        std::fs::write(
            dir.path().join("ca.crt"),
            emulator.ca_pem().context("the emulator serves TLS")?,
        )?;
        let mut cluster = Self {
            emulator,
            simulator: None,
            dir,
        };
        cluster.start_simulator(sim).await?;
        Ok(cluster)
    }

    /// Starts the simulator (again), with an admin client of its own.
    pub async fn start_simulator(&mut self, sim: SimDefaults) -> Result<()> {
        self.stop_simulator().await;
        let client = self.client().await?;
        let config = SimConfig {
            defaults: Settings {
                scenario: sim.scenario,
                step: sim.step,
            },
            ..SimConfig::default()
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let ready = move || {
                let _ = ready_tx.send(());
            };
            if let Err(error) = operator_sim::run_with_ready(client, config, ready, async {
                let _ = stopped.await;
            })
            .await
            {
                tracing::error!(%error, "operator simulator stopped with an error");
            }
        });
        tokio::time::timeout(Duration::from_secs(10), ready_rx)
            .await
            .context("operator simulator did not become ready in 10 s")?
            .context("operator simulator exited before becoming ready")?;
        self.simulator = Some((stop, task));
        Ok(())
    }

    /// Stops the simulator (applications then stay in their current state).
    pub async fn stop_simulator(&mut self) {
        if let Some((stop, task)) = self.simulator.take() {
            let _ = stop.send(());
            let _ = task.await;
        }
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

    /// A kube client with the admin token.
    pub async fn client(&self) -> Result<kube::Client> {
        client_for(
            &self.emulator.base_url(),
            &self.ca_file(),
            &self.emulator.token(),
        )
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
