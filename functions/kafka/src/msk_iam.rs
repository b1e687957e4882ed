//! Amazon MSK IAM authentication: the SASL/OAUTHBEARER token MSK accepts is a SigV4-presigned
//! `kafka-cluster:Connect` URL, base64url-encoded without padding, as AWS's own signers build it
//! (`aws-msk-iam-sasl-signer-python`/`-go`: GET `https://kafka.<region>.amazonaws.com/?Action=kafka-cluster:Connect`,
//! signing name `kafka-cluster`, 900 s expiry, a `User-Agent` parameter added after signing).
//!
//! Signed with `aws-sigv4`, the SDK's own signer. The `aws-msk-iam-sasl-signer` crate wraps the same
//! calls but pins aws-config's default HTTPS client (a second TLS stack, aws-lc, built from C) and STS.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// How long a token is valid; librdkafka asks for a new one after 80% of it.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(900);

const SIGNING_NAME: &str = "kafka-cluster";
const ACTION: &str = "kafka-cluster:Connect";
const USER_AGENT: &str = concat!("spark-gateway/", env!("CARGO_PKG_VERSION"));

/// A token and the instant it stops being valid.
#[derive(Clone, PartialEq, Eq)]
pub struct MskAuthToken {
    /// The OAUTHBEARER token value (it authorises the holder for its lifetime: never log it).
    pub token: String,
    /// Milliseconds since the Unix epoch.
    pub expires_at_ms: i64,
}

impl std::fmt::Debug for MskAuthToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MskAuthToken")
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

/// Why no token could be made.
#[derive(Debug, thiserror::Error)]
pub enum MskTokenError {
    /// The region would not make a valid MSK host name.
    #[error("{0:?} is not an AWS region name")]
    Region(String),
    /// The AWS credentials could not be resolved.
    #[error("cannot resolve AWS credentials for MSK IAM authentication")]
    Credentials(#[source] aws_credential_types::provider::error::CredentialsError),
    /// SigV4 refused the request.
    #[error("cannot sign the MSK IAM token: {0}")]
    Signing(String),
}

/// The token for `region`, signed with `credentials` at `now`.
pub fn auth_token(
    region: &str,
    credentials: &Credentials,
    now: SystemTime,
) -> Result<MskAuthToken, MskTokenError> {
    let valid_region = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid_region {
        return Err(MskTokenError::Region(region.to_string()));
    }
    let host = format!("kafka.{region}.amazonaws.com");
    let mut url = url::Url::parse(&format!("https://{host}/"))
        .map_err(|error| MskTokenError::Signing(error.to_string()))?;
    url.query_pairs_mut().append_pair("Action", ACTION);

    let identity = credentials.clone().into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(TOKEN_LIFETIME);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SIGNING_NAME)
        .time(now)
        .settings(settings)
        .build()
        .map_err(|error| MskTokenError::Signing(error.to_string()))?
        .into();
    let request = SignableRequest::new(
        "GET",
        url.as_str(),
        std::iter::once(("host", host.as_str())),
        SignableBody::Bytes(&[]),
    )
    .map_err(|error| MskTokenError::Signing(error.to_string()))?;
    let (instructions, _signature) = sign(request, &params)
        .map_err(|error| MskTokenError::Signing(error.to_string()))?
        .into_parts();
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in instructions.params() {
            query.append_pair(name, value);
        }
        query.append_pair("User-Agent", USER_AGENT);
    }
    // SigV4 dates have whole seconds; the token expires TOKEN_LIFETIME after the signed date.
    let signed_at = now
        .duration_since(UNIX_EPOCH)
        .map_err(|error| MskTokenError::Signing(error.to_string()))?
        .as_secs();
    let expires_at_ms = ((signed_at + TOKEN_LIFETIME.as_secs()) * 1000) as i64;
    Ok(MskAuthToken {
        token: URL_SAFE_NO_PAD.encode(url.as_str()),
        expires_at_ms,
    })
}
