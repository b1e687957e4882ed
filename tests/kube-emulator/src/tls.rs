//! TLS material: a CA generated at start (or reused from the certificate
//! directory so kubeconfigs stay valid across restarts) and a server
//! certificate for `localhost`, `127.0.0.1` and `::1` signed by it.
//!
//! The rustls configuration names the ring provider explicitly: other crates
//! in the workspace may enable aws-lc-rs too, and then rustls cannot pick a
//! process default on its own.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::Error;

/// The CA and the server configuration built from it.
pub struct TlsMaterial {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// The rustls server configuration (ALPN h2 and http/1.1).
    pub server_config: Arc<rustls::ServerConfig>,
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "kube-emulator CA");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "spark-gateway tests");
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    params
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn write_file(path: PathBuf, contents: &str) -> Result<(), Error> {
    fs::write(&path, contents).map_err(|e| io_error(&path, e))
}

/// Loads the CA key from `dir` when `ca.crt` and `ca.key` exist there, or
/// creates a new CA (and writes both files when a directory is given).
fn load_or_create_ca(dir: Option<&Path>) -> Result<(String, KeyPair), Error> {
    if let Some(dir) = dir {
        let (cert_path, key_path) = (dir.join("ca.crt"), dir.join("ca.key"));
        if cert_path.exists() && key_path.exists() {
            let cert = fs::read_to_string(&cert_path).map_err(|e| io_error(&cert_path, e))?;
            let key = fs::read_to_string(&key_path).map_err(|e| io_error(&key_path, e))?;
            let key = KeyPair::from_pem(&key).map_err(Error::Certificate)?;
            return Ok((cert, key));
        }
    }
    let key = KeyPair::generate().map_err(Error::Certificate)?;
    let cert = ca_params().self_signed(&key).map_err(Error::Certificate)?;
    let cert_pem = cert.pem();
    if let Some(dir) = dir {
        fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        write_file(dir.join("ca.crt"), &cert_pem)?;
        write_file(dir.join("ca.key"), &key.serialize_pem())?;
    }
    Ok((cert_pem, key))
}

/// Builds the CA, the server certificate and the rustls configuration.
pub fn prepare(cert_dir: Option<&Path>, extra_hostnames: &[String]) -> Result<TlsMaterial, Error> {
    let (ca_pem, ca_key) = load_or_create_ca(cert_dir)?;
    // Same subject and key as the stored CA certificate, so certificates it
    // signs chain to that file even when the CA was loaded rather than made.
    let issuer = Issuer::new(ca_params(), ca_key);
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    names.extend(extra_hostnames.iter().cloned());
    let mut params = CertificateParams::new(names).map_err(Error::Certificate)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "kube-emulator");
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate().map_err(Error::Certificate)?;
    let server_cert = params
        .signed_by(&server_key, &issuer)
        .map_err(Error::Certificate)?;
    if let Some(dir) = cert_dir {
        write_file(dir.join("server.crt"), &server_cert.pem())?;
        write_file(dir.join("server.key"), &server_key.serialize_pem())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(Error::Tls)?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(server_cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .map_err(Error::Tls)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsMaterial {
        ca_pem,
        server_config: Arc::new(config),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_reuses_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let first = prepare(Some(dir.path()), &[]).unwrap();
        assert!(first.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(dir.path().join("server.crt").exists());
        let second = prepare(Some(dir.path()), &[]).unwrap();
        assert_eq!(first.ca_pem, second.ca_pem);
        assert_eq!(
            second.server_config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }
}
