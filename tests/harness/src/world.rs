//! The local world started by `infra/local/up`: where each real server listens and how to log in to it.
//!
//! Values come from the process environment (after `source infra/local/run/env`) or, for any variable
//! missing there, from that env file itself, so `cargo test` works in a shell that never sourced it.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

/// Endpoints and credentials of the running local world.
#[derive(Debug, Clone)]
pub struct LocalWorld {
    vars: HashMap<String, String>,
}

impl LocalWorld {
    /// Reads the world's settings; fails with instructions when the world is not up.
    pub fn from_env() -> Result<Self> {
        let env_file = env_file_path();
        let mut vars = match std::fs::read_to_string(&env_file) {
            Ok(text) => parse_env_file(&text),
            Err(_) => HashMap::new(),
        };
        vars.extend(std::env::vars());
        if !vars.contains_key("KAFKA_BOOTSTRAP_SERVERS") {
            bail!(
                "the local world is not running: start it with `infra/local/up` (looked for {} and the environment)",
                env_file.display()
            );
        }
        Ok(Self { vars })
    }

    /// A setting by its environment variable name.
    pub fn var(&self, name: &str) -> Result<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .with_context(|| format!("{name} is not set by infra/local/run/env"))
    }

    /// LocalStack's endpoint (`AWS_ENDPOINT_URL`).
    pub fn aws_endpoint(&self) -> Result<&str> {
        self.var("AWS_ENDPOINT_URL")
    }

    /// The Kafka bootstrap servers (Tansu).
    pub fn kafka_bootstrap(&self) -> Result<&str> {
        self.var("KAFKA_BOOTSTRAP_SERVERS")
    }

    /// The plaintext broker as Kafka settings.
    pub fn kafka(&self) -> Result<spark_gateway_kafka::KafkaSettings> {
        Ok(spark_gateway_kafka::KafkaSettings::plaintext(
            self.kafka_bootstrap()?,
        ))
    }

    /// The broker behind TLS with SASL/SCRAM (`mechanism`: `SCRAM-SHA-256` or `SCRAM-SHA-512`), trusting
    /// the local CA, as the `KAFKA_*` variables would configure it.
    pub fn secure_kafka(&self, mechanism: &str) -> Result<spark_gateway_kafka::KafkaSettings> {
        let vars = self.secure_kafka_vars(mechanism)?;
        spark_gateway_kafka::KafkaSettingsInput::from_lookup(|name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.clone())
        })
        .into_settings()
        .context("the secure broker's settings")
    }

    /// The `KAFKA_*` variables that point a process at the TLS + SCRAM broker.
    pub fn secure_kafka_vars(&self, mechanism: &str) -> Result<Vec<(&'static str, String)>> {
        use spark_gateway_kafka::variables as v;
        Ok(vec![
            (
                v::BOOTSTRAP_SERVERS,
                self.var("KAFKA_SECURE_BOOTSTRAP_SERVERS")?.to_string(),
            ),
            (v::SECURITY_PROTOCOL, "sasl_ssl".to_string()),
            (v::SASL_MECHANISM, mechanism.to_string()),
            (
                v::SASL_USERNAME,
                self.var("KAFKA_SECURE_SASL_USERNAME")?.to_string(),
            ),
            (
                v::SASL_PASSWORD,
                self.var("KAFKA_SECURE_SASL_PASSWORD")?.to_string(),
            ),
            (
                v::SSL_CA_LOCATION,
                self.var("KAFKA_SECURE_CA_LOCATION")?.to_string(),
            ),
        ])
    }

    /// OpenBao's address.
    pub fn vault_addr(&self) -> Result<&str> {
        self.var("VAULT_ADDR")
    }
}

/// `infra/local/run/env` of this checkout, or `$SPARK_GATEWAY_LOCAL_RUN_DIR/env`.
pub fn env_file_path() -> PathBuf {
    match std::env::var_os("SPARK_GATEWAY_LOCAL_RUN_DIR") {
        Some(dir) => PathBuf::from(dir).join("env"),
        None => repo_root().join("infra/local/run/env"),
    }
}

/// The repository root: the workspace above the package cargo or nextest runs the test of (read at run
/// time, so a test binary reused from another checkout through one shared target dir reads this
/// checkout's files), or above this crate.
pub fn repo_root() -> PathBuf {
    let start = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    start
        .ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|manifest| manifest.contains("[workspace]"))
        })
        .unwrap_or_else(|| panic!("no workspace above {}", start.display()))
        .to_path_buf()
}

/// Parses `export NAME=VALUE` lines as the env file writes them (values optionally single- or
/// double-quoted).
fn parse_env_file(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let assignment = line.strip_prefix("export ").unwrap_or(line);
            let (name, value) = assignment.split_once('=')?;
            if name.is_empty() || name.starts_with('#') {
                return None;
            }
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(value);
            Some((name.to_string(), value.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_lines_parse_with_and_without_quotes() {
        let vars = parse_env_file(
            "# comment\nexport A=1\nexport B=\"two words\"\nexport C='x=y'\nD=plain\n\nnot an assignment\n",
        );
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "two words");
        assert_eq!(vars["C"], "x=y");
        assert_eq!(vars["D"], "plain");
        assert_eq!(vars.len(), 4);
    }
}
