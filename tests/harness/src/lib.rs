//! The test harness for Spark Gateway's system tests.
//!
//! # Layout
//! - [`world`]: the running local world (`infra/local/up`): endpoints and credentials from its env file.
//! - [`names`]: unique names, so tests share one world and run in parallel.
//! - [`aws`]: SDK configuration for LocalStack and per-test SQS queues.
//! - [`cluster`]: a private in-process cluster (API emulator + operator simulator) per test.
//! - [`kafka`]: per-test topics on Tansu, an idempotent producer and a reader that waits for records.
//! - [`webhook`]: an HTTPS webhook receiver that checks Standard Webhooks signatures.
//! - [`process`]: memory and CPU time of a process under benchmark, from `/proc`.
//!
//! Integration tests that need the world call [`world::LocalWorld::from_env`], which fails with a
//! message naming `infra/local/up` when it is not running.

pub mod aws;
pub mod cluster;
pub mod kafka;
pub mod names;
pub mod process;
pub mod webhook;
pub mod world;

pub use cluster::{
    GATEWAY_ACCOUNT, SimDefaults, TestCluster, WATCHER_ACCOUNT, deployed_rbac, emulator_config,
};
pub use names::unique_name;
pub use world::LocalWorld;

/// Installs a test-friendly tracing subscriber once (honours `RUST_LOG`; output captured per test).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A binary of this workspace, built next to the running test binary (`cargo build --workspace
/// --bins`); an error naming that command when it is missing.
pub fn workspace_binary(name: &str) -> anyhow::Result<std::path::PathBuf> {
    use anyhow::Context;
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .context("test binary location")?;
    let binary = profile_dir.join(name);
    if !binary.exists() {
        anyhow::bail!(
            "{} is missing: build the binaries first (cargo build --workspace --bins)",
            binary.display()
        );
    }
    Ok(binary)
}
