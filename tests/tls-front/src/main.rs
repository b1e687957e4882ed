//! `tls-front`: accepts TLS on one address and relays the decrypted bytes to a plaintext upstream.
//!
//! Why it exists: Tansu 0.6.0 has a TLS listener, but its `--cert` and `--key` flags sit in one clap
//! group, which clap makes mutually exclusive, so no command line can enable it ("the argument '--cert'
//! cannot be used with '--key'"). The local world's authenticated broker therefore runs Tansu with SASL
//! (`--authentication`, real SCRAM) behind this terminator, and clients see what a TLS listener
//! gives them: a rustls server with the broker's certificate, whose chain and host name they verify.
//! The relay is byte for byte; the Kafka protocol, SASL included, is Tansu's.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// Terminate TLS and relay to a plaintext upstream.
#[derive(Debug, Parser)]
struct Args {
    /// Address to accept TLS connections on.
    #[arg(long)]
    listen: String,
    /// Plaintext address to relay to.
    #[arg(long)]
    upstream: String,
    /// PEM certificate chain of the server.
    #[arg(long)]
    cert: PathBuf,
    /// PEM private key of the server.
    #[arg(long)]
    key: PathBuf,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs = CertificateDer::pem_file_iter(&args.cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .with_context(|| format!("reading {}", args.cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&args.key)
        .with_context(|| format!("reading {}", args.key.display()))?;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the certificate and key do not make a TLS server")?;
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    eprintln!("tls-front ready: {} -> {}", args.listen, args.upstream);
    loop {
        let (client, peer) = listener.accept().await?;
        let (acceptor, upstream) = (acceptor.clone(), args.upstream.clone());
        tokio::spawn(async move {
            // A failed handshake (an untrusted certificate on the client's side) is the client's to
            // report; here it only ends the connection.
            let mut tls = match acceptor.accept(client).await {
                Ok(tls) => tls,
                Err(error) => {
                    eprintln!("{peer}: TLS handshake failed: {error}");
                    return;
                }
            };
            match TcpStream::connect(&upstream).await {
                Ok(mut plain) => {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                }
                Err(error) => eprintln!("{peer}: upstream {upstream}: {error}"),
            }
        });
    }
}
