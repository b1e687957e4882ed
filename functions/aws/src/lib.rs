//! The AWS SDK set-up every binary shares: the configuration from the environment (region, credentials,
//! `AWS_ENDPOINT_URL` for LocalStack) and its HTTPS client, on the workspace's one TLS stack (rustls
//! with ring; the SDK's default would add aws-lc, a second C build). Every AWS client of the system is
//! built from [`sdk_config`], or from [`https_client`] where only a credentials chain is needed.

use aws_config::BehaviorVersion;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

pub use aws_config::SdkConfig;
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// The SDK's HTTPS client on rustls with ring.
pub fn https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// AWS SDK configuration from the environment, with [`https_client`].
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .load()
        .await
}
