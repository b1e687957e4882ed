//! The Kafka adapter: settings validation and MSK IAM tokens as plain functions, and the connection
//! against the local world's brokers: TLS (rustls with the local CA) in front of Tansu doing
//! SASL/SCRAM, with a wrong password and an untrusted certificate each ending in a named error; and
//! the producer served on the caller's runtime instead of by a polling thread.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use rdkafka::producer::FutureRecord;
use spark_gateway_harness::kafka::{TopicReader, create_topic_with, produce, producer_with};
use spark_gateway_harness::world::LocalWorld;
use spark_gateway_kafka::msk_iam::{MskTokenError, TOKEN_LIFETIME, auth_token};
use spark_gateway_kafka::{
    ConnectError, Delivered, KafkaConfigError, KafkaProducer, KafkaSettings, KafkaSettingsInput,
    KafkaSetupError, Pem, ProducerProfile, Sasl, SecurityProtocol, variables as v,
};

fn settings(vars: &[(&str, &str)]) -> Result<KafkaSettings, KafkaConfigError> {
    KafkaSettingsInput::from_lookup(|name| {
        vars.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_string())
    })
    .into_settings()
}

// ---------------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------------

#[test]
fn plaintext_is_the_default_and_a_mechanism_alone_means_sasl_over_tls() {
    let plain = settings(&[(v::BOOTSTRAP_SERVERS, "b:9092")]).unwrap();
    assert_eq!(plain.protocol, SecurityProtocol::Plaintext);
    assert!(plain.sasl.is_none());
    let scram = settings(&[
        (v::BOOTSTRAP_SERVERS, "b:9096"),
        (v::SASL_MECHANISM, "scram-sha-512"),
        (v::SASL_USERNAME, "u"),
        (v::SASL_PASSWORD, "p"),
    ])
    .unwrap();
    assert_eq!(scram.protocol, SecurityProtocol::SaslSsl);
    assert_eq!(scram.mechanism(), Some("SCRAM-SHA-512"));
}

#[test]
fn contradictory_or_incomplete_settings_are_refused_by_name() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "KAFKA_BOOTSTRAP_SERVERS is not set"),
        (
            &[
                (v::BOOTSTRAP_SERVERS, "b"),
                (v::SECURITY_PROTOCOL, "sasl_ssl"),
            ],
            "KAFKA_SASL_MECHANISM is not set",
        ),
        (
            &[
                (v::BOOTSTRAP_SERVERS, "b"),
                (v::SECURITY_PROTOCOL, "ssl"),
                (v::SASL_MECHANISM, "PLAIN"),
            ],
            "does not use SASL",
        ),
        (
            &[
                (v::BOOTSTRAP_SERVERS, "b"),
                (v::SASL_MECHANISM, "SCRAM-SHA-256"),
            ],
            "KAFKA_SASL_USERNAME is not set",
        ),
        (
            &[(v::BOOTSTRAP_SERVERS, "b"), (v::SASL_MECHANISM, "GSSAPI")],
            "KAFKA_SASL_MECHANISM=\"GSSAPI\" is not one of",
        ),
        (
            &[(v::BOOTSTRAP_SERVERS, "b"), (v::SSL_CA_LOCATION, "/ca.pem")],
            "does not use TLS",
        ),
        (
            &[
                (v::BOOTSTRAP_SERVERS, "b"),
                (v::SECURITY_PROTOCOL, "ssl"),
                (v::SSL_CA_LOCATION, "/ca.pem"),
                (v::SSL_CA_PEM, "-----BEGIN CERTIFICATE-----"),
            ],
            "not both",
        ),
        (
            &[
                (v::BOOTSTRAP_SERVERS, "b"),
                (v::SECURITY_PROTOCOL, "ssl"),
                (v::SSL_CERTIFICATE_LOCATION, "/client.pem"),
            ],
            "needs its key",
        ),
        (
            &[
                (v::BOOTSTRAP_SERVERS, "b"),
                (v::SECURITY_PROTOCOL, "sasl_plaintext"),
                (v::SASL_MECHANISM, "AWS_MSK_IAM"),
                (v::AWS_REGION, "eu-west-1"),
            ],
            "needs KAFKA_SECURITY_PROTOCOL=sasl_ssl",
        ),
        (
            &[
                (v::BOOTSTRAP_SERVERS, "b"),
                (v::SASL_MECHANISM, "AWS_MSK_IAM"),
                (v::AWS_REGION, "eu-west-1"),
                (v::SASL_PASSWORD, "p"),
            ],
            "signs with the AWS credentials",
        ),
        (
            &[(v::BOOTSTRAP_SERVERS, "b"), (v::PROPERTIES, "acks=0")],
            "the Kafka property acks is set by Spark Gateway itself",
        ),
        (
            &[
                (v::BOOTSTRAP_SERVERS, "b"),
                (
                    v::PROPERTIES,
                    "client.rack=a,ssl.endpoint.identification.algorithm=none",
                ),
            ],
            "ssl.endpoint.identification.algorithm is set by Spark Gateway itself",
        ),
        (
            &[
                (v::BOOTSTRAP_SERVERS, "b"),
                (v::PROPERTIES, "enable.ssl.certificate.verification=false"),
            ],
            "enable.ssl.certificate.verification is set by Spark Gateway itself",
        ),
    ];
    for (vars, expected) in cases {
        let error = settings(vars).expect_err(expected).to_string();
        assert!(
            error.contains(expected),
            "{error:?} does not say {expected:?}"
        );
    }
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let settings = settings(&[
        (v::BOOTSTRAP_SERVERS, "b"),
        (v::SECURITY_PROTOCOL, "sasl_ssl"),
        (v::SASL_MECHANISM, "PLAIN"),
        (v::SASL_USERNAME, "svc"),
        (v::SASL_PASSWORD, "hunter2-password"),
        (v::SSL_KEY_PEM, "-----BEGIN PRIVATE KEY-----secret-key"),
        (v::SSL_CERTIFICATE_PEM, "-----BEGIN CERTIFICATE-----"),
        (v::SSL_KEY_PASSWORD, "key-password"),
        (v::PROPERTIES, "client.rack=value-of-a-property"),
    ])
    .unwrap();
    let debug = format!("{settings:?}");
    for secret in [
        "hunter2-password",
        "secret-key",
        "key-password",
        "value-of-a-property",
    ] {
        assert!(!debug.contains(secret), "{secret} leaked: {debug}");
    }
    assert!(debug.contains("svc") && debug.contains("client.rack"));
    assert!(matches!(settings.tls.key, Some(Pem::Inline(_))));
}

#[test]
fn a_secret_replaces_the_credentials_of_plain_and_scram_only() {
    let scram = settings(&[
        (v::BOOTSTRAP_SERVERS, "b"),
        (v::SASL_MECHANISM, "SCRAM-SHA-256"),
        (v::SASL_USERNAME, "placeholder"),
        (v::SASL_PASSWORD, "placeholder"),
    ])
    .unwrap()
    .with_sasl_credentials("from-secret".into(), "pw".to_string().into())
    .unwrap();
    assert!(matches!(&scram.sasl, Some(Sasl::Scram { username, .. }) if username == "from-secret"));
    let plaintext = KafkaSettings::plaintext("b");
    assert!(
        plaintext
            .with_sasl_credentials("u".into(), "p".to_string().into())
            .is_err()
    );
}

// ---------------------------------------------------------------------------------------------------
// MSK IAM tokens
// ---------------------------------------------------------------------------------------------------

/// The reference: the URL AWS's own signer library (`aws-msk-iam-sasl-signer-python`, which signs with
/// botocore's `SigV4QueryAuth`) makes for these credentials at 2026-12-02T01:02:03Z, computed with
/// botocore 1.40. Only `User-Agent` (added after signing, not covered by the signature) differs.
const BOTOCORE_SIGNATURE: &str = "3feec3a2bfc947dbf4cb54243d12b173c2b6a31912ff4781160ac17fbb8572b1";

fn example_credentials() -> aws_credential_types::Credentials {
    aws_credential_types::Credentials::new(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        Some("session-token-example".into()),
        None,
        "test",
    )
}

#[test]
fn an_msk_iam_token_is_the_presigned_connect_url_aws_signers_make() {
    let signed_at = UNIX_EPOCH + Duration::from_secs(1_796_173_323); // 2026-12-02T01:02:03Z
    let token = auth_token("eu-west-1", &example_credentials(), signed_at).unwrap();
    assert!(!token.token.contains('=') && !token.token.contains('+') && !token.token.contains('/'));
    let url = String::from_utf8(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&token.token)
            .unwrap(),
    )
    .unwrap();
    let url = url::Url::parse(&url).unwrap();
    assert_eq!(url.host_str(), Some("kafka.eu-west-1.amazonaws.com"));
    assert_eq!(url.path(), "/");
    let param = |name: &str| {
        url.query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    };
    assert_eq!(param("Action").as_deref(), Some("kafka-cluster:Connect"));
    assert_eq!(
        param("X-Amz-Algorithm").as_deref(),
        Some("AWS4-HMAC-SHA256")
    );
    assert_eq!(
        param("X-Amz-Credential").as_deref(),
        Some("AKIDEXAMPLE/20261202/eu-west-1/kafka-cluster/aws4_request")
    );
    assert_eq!(param("X-Amz-Date").as_deref(), Some("20261202T010203Z"));
    assert_eq!(param("X-Amz-Expires").as_deref(), Some("900"));
    assert_eq!(param("X-Amz-SignedHeaders").as_deref(), Some("host"));
    assert_eq!(
        param("X-Amz-Security-Token").as_deref(),
        Some("session-token-example")
    );
    assert_eq!(
        param("X-Amz-Signature").as_deref(),
        Some(BOTOCORE_SIGNATURE)
    );
    assert!(param("User-Agent").is_some_and(|agent| agent.starts_with("spark-gateway/")));
    assert_eq!(
        token.expires_at_ms,
        (1_796_173_323 + TOKEN_LIFETIME.as_secs() as i64) * 1000
    );
    assert!(!format!("{token:?}").contains(&token.token));
}

#[test]
fn a_token_changes_with_time_and_region_and_refuses_a_bad_region() {
    let now = SystemTime::now();
    let a = auth_token("us-east-1", &example_credentials(), now).unwrap();
    let b = auth_token(
        "us-east-1",
        &example_credentials(),
        now + Duration::from_secs(60),
    )
    .unwrap();
    assert_ne!(a.token, b.token);
    assert_eq!(b.expires_at_ms - a.expires_at_ms, 60_000);
    for region in ["", "evil.example.com/", "US-EAST-1"] {
        assert!(matches!(
            auth_token(region, &example_credentials(), now),
            Err(MskTokenError::Region(_))
        ));
    }
}

// ---------------------------------------------------------------------------------------------------
// Against the local world's TLS + SASL/SCRAM broker
// ---------------------------------------------------------------------------------------------------

fn world() -> LocalWorld {
    LocalWorld::from_env().expect("the local world (infra/local/up)")
}

#[tokio::test(flavor = "multi_thread")]
async fn scram_over_tls_produces_and_reads_back_with_either_hash() {
    let world = world();
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let settings = world.secure_kafka(mechanism).unwrap();
        let topic = create_topic_with(&settings, "secure", 1).await.unwrap();
        let producer = producer_with(&settings).unwrap();
        produce(&producer, &topic, "k", mechanism).await.unwrap();
        let records = TopicReader::with_settings(&settings, &topic)
            .unwrap()
            .read_until(Duration::from_secs(30), |records| !records.is_empty())
            .await
            .unwrap();
        assert_eq!(records[0].value, mechanism);
    }
}

async fn check(settings: KafkaSettings) -> ConnectError {
    let producer = producer_with(&settings).unwrap();
    tokio::task::spawn_blocking(move || {
        producer.check_topic("spark-gateway.events", Duration::from_secs(10))
    })
    .await
    .unwrap()
    .expect_err("the connection should be refused")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_an_authentication_error_that_names_the_mechanism() {
    let world = world();
    let right = world.var("KAFKA_SECURE_SASL_PASSWORD").unwrap().to_string();
    let settings = world
        .secure_kafka("SCRAM-SHA-512")
        .unwrap()
        .with_sasl_credentials(
            "spark-gateway".into(),
            "not-the-password".to_string().into(),
        )
        .unwrap();
    let error = check(settings).await;
    let text = error.to_string();
    assert!(
        matches!(
            error,
            ConnectError::Authentication {
                mechanism: "SCRAM-SHA-512",
                ..
            }
        ),
        "{text}"
    );
    assert!(!error.is_transient());
    assert!(
        !text.contains("not-the-password") && !text.contains(&right),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_certificate_is_a_tls_error() {
    let world = world();
    let mut settings = world.secure_kafka("SCRAM-SHA-512").unwrap();
    settings.tls.ca = Some(Pem::File(
        world
            .var("KAFKA_SECURE_UNTRUSTED_CA_LOCATION")
            .unwrap()
            .into(),
    ));
    let error = check(settings).await;
    let text = error.to_string();
    assert!(matches!(error, ConnectError::Tls { .. }), "{text}");
    assert!(text.contains("certificate verify failed"), "{text}");
    assert!(!error.is_transient());
}

// ---------------------------------------------------------------------------------------------------
// The served producer: delivery reports handled on the caller's runtime, no polling thread
// ---------------------------------------------------------------------------------------------------

/// The names of this process's threads (nextest runs every test in a process of its own).
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_string())
        .collect()
}

fn function_producer(bootstrap: &str) -> Result<KafkaProducer, KafkaSetupError> {
    producer_timing_out_after(bootstrap, Duration::from_secs(10))
}

fn producer_timing_out_after(
    bootstrap: &str,
    delivery_timeout: Duration,
) -> Result<KafkaProducer, KafkaSetupError> {
    KafkaSettings::plaintext(bootstrap).producer(
        "served-producer-test",
        ProducerProfile::AwaitEachSend { delivery_timeout },
        None,
    )
}

// A one-thread runtime, as the Lambda functions run: every send completes although nothing but this
// thread serves the reports, and librdkafka's threads are the only others.
#[tokio::test(flavor = "current_thread")]
async fn sends_complete_on_a_one_thread_runtime_without_a_polling_thread() {
    let bootstrap = world().kafka_bootstrap().unwrap().to_string();
    let topic = spark_gateway_harness::kafka::create_topic(&bootstrap, "served", 1)
        .await
        .unwrap();
    let producer = function_producer(&bootstrap).unwrap();
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..50 {
        let producer = producer.clone();
        let (topic, value) = (topic.clone(), format!("record-{i}"));
        sends.spawn(async move {
            producer
                .send(
                    FutureRecord::<str, str>::to(&topic)
                        .key("k")
                        .payload(&value),
                    Duration::from_secs(10),
                )
                .await
        });
    }
    let delivered: Vec<Delivered> = sends
        .join_all()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut offsets: Vec<i64> = delivered.iter().map(|d| d.offset).collect();
    offsets.sort_unstable();
    offsets.dedup();
    assert_eq!(offsets.len(), 50, "every record has an offset of its own");
    let names = thread_names();
    // rdkafka's FutureProducer would have started "producer polling thread" (cut to 15 characters).
    assert!(
        !names.iter().any(|n| n.starts_with("producer poll")),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n.starts_with("rdk:")), "{names:?}");
    let records = TopicReader::new(&bootstrap, &topic)
        .unwrap()
        .read_until(Duration::from_secs(30), |records| records.len() >= 50)
        .await
        .unwrap();
    assert_eq!(records.len(), 50);
}

// Dropping the last clone destroys the client: the serving task holds no reference that would keep
// librdkafka's threads alive.
#[tokio::test(flavor = "current_thread")]
async fn dropping_the_last_clone_destroys_the_client() {
    let bootstrap = world().kafka_bootstrap().unwrap().to_string();
    let producer = function_producer(&bootstrap).unwrap();
    let copy = producer.clone();
    assert!(thread_names().iter().any(|n| n.starts_with("rdk:")));
    drop(producer);
    tokio::task::yield_now().await;
    assert!(
        thread_names().iter().any(|n| n.starts_with("rdk:")),
        "one clone is left"
    );
    drop(copy);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while thread_names().iter().any(|n| n.starts_with("rdk:")) {
        assert!(std::time::Instant::now() < deadline, "{:?}", thread_names());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn a_producer_outside_a_tokio_runtime_is_refused_by_name() {
    let error = function_producer("127.0.0.1:9").err().expect("no runtime");
    assert!(matches!(error, KafkaSetupError::NoRuntime), "{error:?}");
    assert_eq!(
        error.to_string(),
        "a Kafka producer must be created inside a Tokio runtime"
    );
}

// A producer made on a runtime that has since shut down (its serving task went with it) still
// delivers: its senders serve the reports.
#[test]
fn a_producer_outliving_its_runtime_still_delivers() {
    let bootstrap = world().kafka_bootstrap().unwrap().to_string();
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (producer, topic) = first.block_on(async {
        let topic = spark_gateway_harness::kafka::create_topic(&bootstrap, "outlived", 1)
            .await
            .unwrap();
        (function_producer(&bootstrap).unwrap(), topic)
    });
    drop(first);
    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let delivered = second.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(20),
            producer.send(
                FutureRecord::<str, str>::to(&topic).key("k").payload("v"),
                Duration::from_secs(10),
            ),
        )
        .await
    });
    let delivered = delivered.expect("the send must not hang").unwrap();
    assert_eq!(delivered.offset, 0);
}

// The runtime that serves the producer shuts down while a send on another runtime waits for its
// report (no broker answers, so the report is librdkafka's timeout, a second later): the waiting send
// takes over serving and gets it.
#[test]
fn a_send_waiting_when_the_serving_runtime_ends_still_gets_its_report() {
    let (made, producer) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            // Nothing listens on the discard port: the record can only time out.
            made.send(producer_timing_out_after("127.0.0.1:9", Duration::from_secs(1)).unwrap())
                .unwrap();
            stopped.await.unwrap();
        });
    });
    let producer = producer.recv().unwrap();
    let sender = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcome = sender.block_on(async {
        let send = producer.send(
            FutureRecord::<str, str>::to("nowhere")
                .key("k")
                .payload("v"),
            Duration::from_secs(1),
        );
        let mut send = std::pin::pin!(send);
        // The send is waiting for its report when the serving runtime goes.
        assert!(
            tokio::time::timeout(Duration::from_millis(200), &mut send)
                .await
                .is_err()
        );
        stop.send(()).unwrap();
        serving.join().unwrap();
        tokio::time::timeout(Duration::from_secs(20), send).await
    });
    let error = outcome.expect("the send must not hang").unwrap_err();
    assert_eq!(
        error.rdkafka_error_code(),
        Some(rdkafka::types::RDKafkaErrorCode::MessageTimedOut),
        "{error}"
    );
}
