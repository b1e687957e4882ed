//! Where the brokers are and how to authenticate to them, read once from the same variables in every
//! binary (`KAFKA_*`, the README's table), validated before any client exists.

use std::fmt;
use std::path::PathBuf;

use rdkafka::ClientConfig;
use secrecy::{ExposeSecret, SecretString};

/// The environment variables (the binaries' flags have the same names in kebab case, see [`crate::args`]).
pub mod variables {
    /// `host:port[,host:port...]`.
    pub const BOOTSTRAP_SERVERS: &str = "KAFKA_BOOTSTRAP_SERVERS";
    /// `plaintext` (default), `ssl`, `sasl_plaintext` or `sasl_ssl`.
    pub const SECURITY_PROTOCOL: &str = "KAFKA_SECURITY_PROTOCOL";
    /// `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` or `AWS_MSK_IAM`.
    pub const SASL_MECHANISM: &str = "KAFKA_SASL_MECHANISM";
    /// User name for PLAIN and SCRAM.
    pub const SASL_USERNAME: &str = "KAFKA_SASL_USERNAME";
    /// Password for PLAIN and SCRAM.
    pub const SASL_PASSWORD: &str = "KAFKA_SASL_PASSWORD";
    /// A Secrets Manager secret `{"username": ..., "password": ...}` (the format of Lambda's Kafka event
    /// sources), read by the binaries that talk to AWS instead of the two variables above.
    pub const SASL_SECRET_ID: &str = "KAFKA_SASL_SECRET_ID";
    /// PEM file of the CA(s) that sign the brokers' certificates (default: the system's store).
    pub const SSL_CA_LOCATION: &str = "KAFKA_SSL_CA_LOCATION";
    /// The same as PEM text.
    pub const SSL_CA_PEM: &str = "KAFKA_SSL_CA_PEM";
    /// PEM file of the client certificate (mutual TLS).
    pub const SSL_CERTIFICATE_LOCATION: &str = "KAFKA_SSL_CERTIFICATE_LOCATION";
    /// The same as PEM text.
    pub const SSL_CERTIFICATE_PEM: &str = "KAFKA_SSL_CERTIFICATE_PEM";
    /// PEM file of the client key.
    pub const SSL_KEY_LOCATION: &str = "KAFKA_SSL_KEY_LOCATION";
    /// The same as PEM text.
    pub const SSL_KEY_PEM: &str = "KAFKA_SSL_KEY_PEM";
    /// Password of an encrypted client key.
    pub const SSL_KEY_PASSWORD: &str = "KAFKA_SSL_KEY_PASSWORD";
    /// `https` (default: the broker's certificate must name the host) or `none`.
    pub const SSL_ENDPOINT_IDENTIFICATION: &str = "KAFKA_SSL_ENDPOINT_IDENTIFICATION";
    /// Region of the MSK cluster for `AWS_MSK_IAM` (default: `AWS_REGION`).
    pub const AWS_REGION: &str = "KAFKA_AWS_REGION";
    /// Further librdkafka properties, `key=value` separated by commas.
    pub const PROPERTIES: &str = "KAFKA_PROPERTIES";
}

/// librdkafka's `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    /// No TLS, no authentication: the local default.
    Plaintext,
    /// TLS (optionally with a client certificate).
    Ssl,
    /// SASL without TLS (PLAIN and SCRAM only; credentials would cross in clear with PLAIN).
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "plaintext" => Some(Self::Plaintext),
            "ssl" => Some(Self::Ssl),
            "sasl_plaintext" => Some(Self::SaslPlaintext),
            "sasl_ssl" => Some(Self::SaslSsl),
            _ => None,
        }
    }

    /// The librdkafka value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Ssl => "ssl",
            Self::SaslPlaintext => "sasl_plaintext",
            Self::SaslSsl => "sasl_ssl",
        }
    }

    fn uses_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

/// How a SASL client proves who it is.
#[derive(Clone)]
pub enum Sasl {
    /// `PLAIN`: the password itself goes to the broker (use it over TLS only).
    Plain {
        /// User name.
        username: String,
        /// Password.
        password: SecretString,
    },
    /// `SCRAM-SHA-256` / `SCRAM-SHA-512`: a challenge-response; the password never crosses.
    Scram {
        /// 256 or 512.
        sha: ScramSha,
        /// User name.
        username: String,
        /// Password.
        password: SecretString,
    },
    /// Amazon MSK IAM: OAUTHBEARER tokens signed from the process's AWS credentials ([`crate::msk_iam`]).
    AwsMskIam {
        /// The cluster's region.
        region: String,
    },
}

/// The SCRAM hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramSha {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

impl Sasl {
    /// The name in librdkafka's `sasl.mechanism` and in errors.
    pub fn mechanism(&self) -> &'static str {
        match self {
            Self::Plain { .. } => "PLAIN",
            Self::Scram {
                sha: ScramSha::Sha256,
                ..
            } => "SCRAM-SHA-256",
            Self::Scram {
                sha: ScramSha::Sha512,
                ..
            } => "SCRAM-SHA-512",
            Self::AwsMskIam { .. } => "OAUTHBEARER",
        }
    }
}

impl fmt::Debug for Sasl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plain { username, .. } | Self::Scram { username, .. } => f
                .debug_struct("Sasl")
                .field("mechanism", &self.mechanism())
                .field("username", username)
                .finish_non_exhaustive(),
            Self::AwsMskIam { region } => f
                .debug_struct("Sasl")
                .field("mechanism", &"AWS_MSK_IAM")
                .field("region", region)
                .finish(),
        }
    }
}

/// A PEM document, from a file or inline.
#[derive(Clone)]
pub enum Pem {
    /// A file path.
    File(PathBuf),
    /// The PEM text (a key's is secret).
    Inline(SecretString),
}

impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Inline(_) => f.write_str("Inline(..)"),
        }
    }
}

/// TLS settings (used when the protocol is `ssl` or `sasl_ssl`).
#[derive(Clone, Debug)]
pub struct Tls {
    /// CAs to trust; `None` is the system's store.
    pub ca: Option<Pem>,
    /// Client certificate for mutual TLS.
    pub certificate: Option<Pem>,
    /// Client key for mutual TLS.
    pub key: Option<Pem>,
    /// Password of an encrypted key.
    pub key_password: Option<SecretString>,
    /// Whether the broker's certificate must name the host connected to (hostname verification).
    pub verify_hostname: bool,
}

impl Default for Tls {
    fn default() -> Self {
        Self {
            ca: None,
            certificate: None,
            key: None,
            key_password: None,
            verify_hostname: true,
        }
    }
}

/// Everything a client needs to reach and authenticate to the brokers.
#[derive(Clone)]
pub struct KafkaSettings {
    /// `bootstrap.servers`.
    pub bootstrap_servers: String,
    /// `security.protocol`.
    pub protocol: SecurityProtocol,
    /// SASL, for the `sasl_*` protocols.
    pub sasl: Option<Sasl>,
    /// TLS, for `ssl` and `sasl_ssl`.
    pub tls: Tls,
    /// Further librdkafka properties (values may be secrets: never logged).
    pub properties: Vec<(String, String)>,
}

impl fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSettings")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("protocol", &self.protocol)
            .field("sasl", &self.sasl)
            .field("tls", &self.tls)
            .field(
                "properties",
                &self.properties.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KafkaConfigError {
    /// A required variable is missing.
    #[error("{0} is not set")]
    Missing(&'static str),
    /// A variable has a value outside its set.
    #[error("{name}={value:?} is not one of {allowed}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Its value (never a secret's).
        value: String,
        /// What it may be.
        allowed: &'static str,
    },
    /// Settings that contradict each other.
    #[error("{0}")]
    Conflict(String),
    /// An extra property would change what the adapter decides.
    #[error(
        "the Kafka property {0} is set by Spark Gateway itself; use the KAFKA_* settings (README, Kafka) instead"
    )]
    ManagedProperty(String),
    /// An extra property is not `key=value`.
    #[error(
        "{} entries must be key=value (got an entry without '=')",
        variables::PROPERTIES
    )]
    MalformedProperty,
}

/// Property keys the adapter or a client profile sets: an extra property may not override them, since
/// one could silently turn off certificate checks, authentication or delivery guarantees.
const MANAGED_PREFIXES: [&str; 2] = ["sasl.", "ssl."];
const MANAGED_KEYS: [&str; 10] = [
    "bootstrap.servers",
    "security.protocol",
    "enable.ssl.certificate.verification",
    "enable.sasl.oauthbearer.unsecure.jwt",
    "acks",
    "enable.idempotence",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "isolation.level",
];

/// The raw values, from the environment or from flags, before validation.
#[derive(Debug, Clone, Default)]
pub struct KafkaSettingsInput {
    /// See [`variables::BOOTSTRAP_SERVERS`].
    pub bootstrap_servers: Option<String>,
    /// See [`variables::SECURITY_PROTOCOL`].
    pub security_protocol: Option<String>,
    /// See [`variables::SASL_MECHANISM`].
    pub sasl_mechanism: Option<String>,
    /// See [`variables::SASL_USERNAME`].
    pub sasl_username: Option<String>,
    /// See [`variables::SASL_PASSWORD`].
    pub sasl_password: Option<SecretString>,
    /// See [`variables::SSL_CA_LOCATION`].
    pub ssl_ca_location: Option<PathBuf>,
    /// See [`variables::SSL_CA_PEM`].
    pub ssl_ca_pem: Option<String>,
    /// See [`variables::SSL_CERTIFICATE_LOCATION`].
    pub ssl_certificate_location: Option<PathBuf>,
    /// See [`variables::SSL_CERTIFICATE_PEM`].
    pub ssl_certificate_pem: Option<String>,
    /// See [`variables::SSL_KEY_LOCATION`].
    pub ssl_key_location: Option<PathBuf>,
    /// See [`variables::SSL_KEY_PEM`].
    pub ssl_key_pem: Option<SecretString>,
    /// See [`variables::SSL_KEY_PASSWORD`].
    pub ssl_key_password: Option<SecretString>,
    /// See [`variables::SSL_ENDPOINT_IDENTIFICATION`].
    pub ssl_endpoint_identification: Option<String>,
    /// See [`variables::AWS_REGION`].
    pub aws_region: Option<String>,
    /// See [`variables::PROPERTIES`].
    pub properties: Vec<String>,
    /// [`variables::SASL_SECRET_ID`] is set: the user and password come from that secret later
    /// ([`KafkaSettings::with_sasl_credentials`]), so they are not required here.
    pub credentials_from_secret: bool,
}

impl KafkaSettingsInput {
    /// Reads every variable through `lookup` (empty values count as unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        use variables as v;
        let var = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        Self {
            bootstrap_servers: var(v::BOOTSTRAP_SERVERS),
            security_protocol: var(v::SECURITY_PROTOCOL),
            sasl_mechanism: var(v::SASL_MECHANISM),
            sasl_username: var(v::SASL_USERNAME),
            sasl_password: var(v::SASL_PASSWORD).map(SecretString::from),
            ssl_ca_location: var(v::SSL_CA_LOCATION).map(PathBuf::from),
            ssl_ca_pem: var(v::SSL_CA_PEM),
            ssl_certificate_location: var(v::SSL_CERTIFICATE_LOCATION).map(PathBuf::from),
            ssl_certificate_pem: var(v::SSL_CERTIFICATE_PEM),
            ssl_key_location: var(v::SSL_KEY_LOCATION).map(PathBuf::from),
            ssl_key_pem: var(v::SSL_KEY_PEM).map(SecretString::from),
            ssl_key_password: var(v::SSL_KEY_PASSWORD).map(SecretString::from),
            ssl_endpoint_identification: var(v::SSL_ENDPOINT_IDENTIFICATION),
            aws_region: var(v::AWS_REGION).or_else(|| var("AWS_REGION")),
            properties: var(v::PROPERTIES)
                .map(|text| {
                    text.split(',')
                        .filter(|entry| !entry.trim().is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            credentials_from_secret: var(v::SASL_SECRET_ID).is_some(),
        }
    }

    /// Validates the values into settings.
    pub fn into_settings(self) -> Result<KafkaSettings, KafkaConfigError> {
        use variables as v;
        let bootstrap_servers = self
            .bootstrap_servers
            .ok_or(KafkaConfigError::Missing(v::BOOTSTRAP_SERVERS))?;
        let mechanism = self
            .sasl_mechanism
            .as_deref()
            .map(|m| m.trim().to_ascii_uppercase());
        let protocol = match self.security_protocol.as_deref() {
            Some(text) => {
                SecurityProtocol::parse(text.trim()).ok_or(KafkaConfigError::Invalid {
                    name: v::SECURITY_PROTOCOL,
                    value: text.to_string(),
                    allowed: "plaintext, ssl, sasl_plaintext, sasl_ssl",
                })?
            }
            // Choosing a mechanism without a protocol means SASL over TLS, never credentials in clear.
            None if mechanism.is_some() => SecurityProtocol::SaslSsl,
            None => SecurityProtocol::Plaintext,
        };
        let credentials_given = self.sasl_username.is_some() || self.sasl_password.is_some();
        let sasl = match (protocol.uses_sasl(), mechanism) {
            (false, None) => None,
            (false, Some(_)) => {
                return Err(KafkaConfigError::Conflict(format!(
                    "{} is set but {}={} does not use SASL (use sasl_ssl)",
                    v::SASL_MECHANISM,
                    v::SECURITY_PROTOCOL,
                    protocol.as_str()
                )));
            }
            (true, None) => return Err(KafkaConfigError::Missing(v::SASL_MECHANISM)),
            (true, Some(mechanism)) => {
                let placeholder = |given: Option<String>| {
                    given.or_else(|| self.credentials_from_secret.then(String::new))
                };
                let password = self
                    .sasl_password
                    .or_else(|| self.credentials_from_secret.then(|| SecretString::from("")));
                Some(sasl(
                    &mechanism,
                    protocol,
                    placeholder(self.sasl_username),
                    password,
                    self.aws_region,
                )?)
            }
        };
        if sasl.is_none() && credentials_given {
            return Err(KafkaConfigError::Conflict(format!(
                "{}/{} are set but no SASL mechanism is",
                v::SASL_USERNAME,
                v::SASL_PASSWORD
            )));
        }
        let tls = Tls {
            ca: pem(
                v::SSL_CA_LOCATION,
                self.ssl_ca_location,
                v::SSL_CA_PEM,
                self.ssl_ca_pem.map(SecretString::from),
            )?,
            certificate: pem(
                v::SSL_CERTIFICATE_LOCATION,
                self.ssl_certificate_location,
                v::SSL_CERTIFICATE_PEM,
                self.ssl_certificate_pem.map(SecretString::from),
            )?,
            key: pem(
                v::SSL_KEY_LOCATION,
                self.ssl_key_location,
                v::SSL_KEY_PEM,
                self.ssl_key_pem,
            )?,
            key_password: self.ssl_key_password,
            verify_hostname: match self.ssl_endpoint_identification.as_deref() {
                None => true,
                Some(text) => match text.trim().to_ascii_lowercase().as_str() {
                    "https" => true,
                    "none" => false,
                    _ => {
                        return Err(KafkaConfigError::Invalid {
                            name: v::SSL_ENDPOINT_IDENTIFICATION,
                            value: text.to_string(),
                            allowed: "https, none",
                        });
                    }
                },
            },
        };
        let tls_given = tls.ca.is_some()
            || tls.certificate.is_some()
            || tls.key.is_some()
            || tls.key_password.is_some()
            || !tls.verify_hostname;
        if tls_given && !protocol.uses_tls() {
            return Err(KafkaConfigError::Conflict(format!(
                "TLS settings (KAFKA_SSL_*) are given but {}={} does not use TLS (use ssl or sasl_ssl)",
                v::SECURITY_PROTOCOL,
                protocol.as_str()
            )));
        }
        if tls.certificate.is_some() != tls.key.is_some() {
            return Err(KafkaConfigError::Conflict(
                "a client certificate needs its key and a key its certificate (KAFKA_SSL_CERTIFICATE_* and KAFKA_SSL_KEY_*)"
                    .into(),
            ));
        }
        let properties = self
            .properties
            .iter()
            .map(|entry| {
                let (key, value) = entry
                    .split_once('=')
                    .ok_or(KafkaConfigError::MalformedProperty)?;
                let key = key.trim();
                if key.is_empty() {
                    return Err(KafkaConfigError::MalformedProperty);
                }
                if is_managed(key) {
                    return Err(KafkaConfigError::ManagedProperty(key.to_string()));
                }
                Ok((key.to_string(), value.to_string()))
            })
            .collect::<Result<_, _>>()?;
        Ok(KafkaSettings {
            bootstrap_servers,
            protocol,
            sasl,
            tls,
            properties,
        })
    }
}

fn is_managed(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    MANAGED_KEYS.contains(&key.as_str()) || MANAGED_PREFIXES.iter().any(|p| key.starts_with(p))
}

fn sasl(
    mechanism: &str,
    protocol: SecurityProtocol,
    username: Option<String>,
    password: Option<SecretString>,
    region: Option<String>,
) -> Result<Sasl, KafkaConfigError> {
    use variables as v;
    let credentials = |username: Option<String>, password: Option<SecretString>| {
        Ok::<_, KafkaConfigError>((
            username.ok_or(KafkaConfigError::Missing(v::SASL_USERNAME))?,
            password.ok_or(KafkaConfigError::Missing(v::SASL_PASSWORD))?,
        ))
    };
    match mechanism {
        "PLAIN" => {
            let (username, password) = credentials(username, password)?;
            Ok(Sasl::Plain { username, password })
        }
        "SCRAM-SHA-256" | "SCRAM-SHA-512" => {
            let (username, password) = credentials(username, password)?;
            let sha = if mechanism.ends_with("256") {
                ScramSha::Sha256
            } else {
                ScramSha::Sha512
            };
            Ok(Sasl::Scram {
                sha,
                username,
                password,
            })
        }
        "AWS_MSK_IAM" => {
            if username.is_some() || password.is_some() {
                return Err(KafkaConfigError::Conflict(format!(
                    "AWS_MSK_IAM signs with the AWS credentials; unset {} and {}",
                    v::SASL_USERNAME,
                    v::SASL_PASSWORD
                )));
            }
            if protocol != SecurityProtocol::SaslSsl {
                return Err(KafkaConfigError::Conflict(format!(
                    "AWS_MSK_IAM needs {}=sasl_ssl (MSK's IAM listener is TLS only)",
                    v::SECURITY_PROTOCOL
                )));
            }
            let region = region.ok_or(KafkaConfigError::Missing(v::AWS_REGION))?;
            Ok(Sasl::AwsMskIam { region })
        }
        other => Err(KafkaConfigError::Invalid {
            name: v::SASL_MECHANISM,
            value: other.to_string(),
            allowed: "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, AWS_MSK_IAM",
        }),
    }
}

fn pem(
    location_name: &'static str,
    location: Option<PathBuf>,
    pem_name: &'static str,
    inline: Option<SecretString>,
) -> Result<Option<Pem>, KafkaConfigError> {
    match (location, inline) {
        (Some(_), Some(_)) => Err(KafkaConfigError::Conflict(format!(
            "set {location_name} or {pem_name}, not both"
        ))),
        (Some(path), None) => Ok(Some(Pem::File(path))),
        (None, Some(text)) => Ok(Some(Pem::Inline(text))),
        (None, None) => Ok(None),
    }
}

impl KafkaSettings {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self, KafkaConfigError> {
        KafkaSettingsInput::from_lookup(|name| std::env::var(name).ok()).into_settings()
    }

    /// Plaintext to `bootstrap_servers`, nothing else (tests and the local default).
    pub fn plaintext(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            protocol: SecurityProtocol::Plaintext,
            sasl: None,
            tls: Tls::default(),
            properties: Vec::new(),
        }
    }

    /// Replaces the SASL user and password (from a secret read after the settings).
    pub fn with_sasl_credentials(
        mut self,
        username: String,
        password: SecretString,
    ) -> Result<Self, KafkaConfigError> {
        match &mut self.sasl {
            Some(Sasl::Plain {
                username: u,
                password: p,
            })
            | Some(Sasl::Scram {
                username: u,
                password: p,
                ..
            }) => {
                *u = username;
                *p = password;
                Ok(self)
            }
            _ => Err(KafkaConfigError::Conflict(format!(
                "{} is set but the SASL mechanism is not PLAIN or SCRAM",
                variables::SASL_SECRET_ID
            ))),
        }
    }

    /// The connection and security part of every client's configuration.
    pub(crate) fn apply(&self, config: &mut ClientConfig) {
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("security.protocol", self.protocol.as_str());
        match &self.sasl {
            Some(
                Sasl::Plain { username, password }
                | Sasl::Scram {
                    username, password, ..
                },
            ) => {
                config
                    .set(
                        "sasl.mechanism",
                        self.sasl.as_ref().map_or("", Sasl::mechanism),
                    )
                    .set("sasl.username", username)
                    .set("sasl.password", password.expose_secret());
            }
            Some(Sasl::AwsMskIam { .. }) => {
                config.set("sasl.mechanism", "OAUTHBEARER");
            }
            None => {}
        }
        if self.protocol.uses_tls() {
            let tls = &self.tls;
            match &tls.ca {
                Some(Pem::File(path)) => config.set("ssl.ca.location", path.display().to_string()),
                Some(Pem::Inline(text)) => config.set("ssl.ca.pem", text.expose_secret()),
                // librdkafka looks in the usual CA bundle places, so one build works on Debian and on
                // Lambda's Amazon Linux (whose bundle is elsewhere than the build machine's OpenSSL default).
                None => config.set("ssl.ca.location", "probe"),
            };
            match &tls.certificate {
                Some(Pem::File(path)) => {
                    config.set("ssl.certificate.location", path.display().to_string());
                }
                Some(Pem::Inline(text)) => {
                    config.set("ssl.certificate.pem", text.expose_secret());
                }
                None => {}
            }
            match &tls.key {
                Some(Pem::File(path)) => {
                    config.set("ssl.key.location", path.display().to_string());
                }
                Some(Pem::Inline(text)) => {
                    config.set("ssl.key.pem", text.expose_secret());
                }
                None => {}
            }
            if let Some(password) = &tls.key_password {
                config.set("ssl.key.password", password.expose_secret());
            }
            config.set(
                "ssl.endpoint.identification.algorithm",
                if tls.verify_hostname { "https" } else { "none" },
            );
        }
        for (key, value) in &self.properties {
            config.set(key, value);
        }
    }

    /// The SASL mechanism's name, for errors.
    pub fn mechanism(&self) -> Option<&'static str> {
        self.sasl.as_ref().map(Sasl::mechanism)
    }
}
