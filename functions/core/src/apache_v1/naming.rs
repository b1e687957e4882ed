//! The names operator 0.5.0 derives for what it creates, so the gateway and the watcher can point at
//! them without asking the cluster, and the simulator creates what the operator would.

use sha2::{Digest, Sha256};

/// `SparkAppSubmissionWorker.DEFAULT_ID_LENGTH_LIMIT`: longer `<name>-<attempt>` ids are hashed.
const APP_ID_LENGTH_LIMIT: usize = 46;
/// `SparkAppSubmissionWorker.DEFAULT_HASH_BASED_IDENTIFIER_LENGTH_LIMIT`.
const APP_ID_HASH_LENGTH: usize = 36;

/// The `spark.app.id` operator 0.5.0 generates for attempt `attempt` of `namespace/name`
/// (`SparkAppSubmissionWorker.generateSparkAppId`): `<name>-<attempt>` when that fits in 46
/// characters, otherwise its first 9 characters, `-`, and the first 36 base-36 digits of the
/// SHA-256 of `<namespace>/<name>/<attempt>` (`generateHashBasedId`, Java `BigInteger(1, digest)
/// .toString(36)`). The id is the prefix of every resource of the attempt. Policy refuses a
/// request's own `spark.app.id`, so the generated one is the one in force.
pub fn spark_app_id(namespace: &str, name: &str, attempt: u64) -> String {
    let preferred = format!("{name}-{attempt}");
    if preferred.len() <= APP_ID_LENGTH_LIMIT {
        return preferred;
    }
    // Kubernetes names are ASCII, so byte and character offsets agree.
    let prefix_len = APP_ID_LENGTH_LIMIT - APP_ID_HASH_LENGTH - 1;
    let prefix = preferred.get(..prefix_len).unwrap_or(&preferred);
    let digest = Sha256::digest(format!("{namespace}/{name}/{attempt}").as_bytes());
    let hash = base36(&digest);
    // Java's substring would throw on a hash under 36 digits (odds about 2^-70); keep it whole.
    let hash = hash.get(..APP_ID_HASH_LENGTH).unwrap_or(&hash);
    format!("{prefix}-{hash}")
}

/// The driver pod of attempt `attempt`: Spark's `BasicDriverFeatureStep` names it
/// `<resourceNamePrefix>-driver`, and operator 0.5.0's `SparkAppDriverConf.resourceNamePrefix` is
/// the app id ([`spark_app_id`]). `spark.kubernetes.driver.pod.name` would override it; policy
/// refuses that key.
pub fn driver_pod_name(namespace: &str, name: &str, attempt: u64) -> String {
    format!("{}-driver", spark_app_id(namespace, name, attempt))
}

/// An unsigned big-endian number in lowercase base 36 without leading zeros, like Java's
/// `BigInteger.toString(36)`.
fn base36(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut number: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    let mut digits = Vec::new();
    while !number.is_empty() {
        let mut remainder = 0u32;
        for byte in &mut number {
            let value = (remainder << 8) | u32::from(*byte);
            *byte = u8::try_from(value / 36).unwrap_or(u8::MAX);
            remainder = value % 36;
        }
        digits.push(DIGITS[remainder as usize]);
        let zeros = number.iter().take_while(|b| **b == 0).count();
        number.drain(..zeros);
    }
    if digits.is_empty() {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values printed by the operator's own algorithm (the body of
    // `SparkAppSubmissionWorker.generateSparkAppId`/`generateHashBasedId`, 0.5.0) run on JDK 17
    // with `java.security.MessageDigest` in place of commons-codec's `DigestUtils.sha256(String)`,
    // which hashes the UTF-8 bytes the same way.
    #[test]
    fn app_ids_follow_the_operator_0_5_0() {
        let at_limit = "a2345678901234567890123456789012345678901234";
        let long = "nightly-customer-churn-feature-engineering-pipeline";
        let cases = [
            (("spark-jobs", "pi-test", 0), "pi-test-0"),
            (
                ("spark-jobs", at_limit, 0),
                "a2345678901234567890123456789012345678901234-0",
            ),
            // The same name crosses the limit once the attempt has two digits.
            (
                ("spark-jobs", at_limit, 10),
                "a23456789-4q5j3yyh3o1xhbksltk2kqgc67f66r7t11gr",
            ),
            (
                (
                    "spark-jobs",
                    "a23456789012345678901234567890123456789012345",
                    0,
                ),
                "a23456789-5izpxvnuahp1xtoh5k8gpds91p2g92iop99a",
            ),
            (
                ("sjns-data-control", long, 0),
                "nightly-c-3gjxs6fvr8vcfpfw502q9ah5qam5jt18fruw",
            ),
            (
                ("sjns-data-control", long, 1),
                "nightly-c-4qojse9q8pc9j8czzkk6w1ab5t6scry1btqw",
            ),
            // The namespace is part of the hash.
            (
                ("other-ns", long, 0),
                "nightly-c-2pc2bweu5onlrd94hlw2p85p9es0rfxmoa2z",
            ),
        ];
        for ((namespace, name, attempt), expected) in cases {
            assert_eq!(
                spark_app_id(namespace, name, attempt),
                expected,
                "{namespace}/{name} #{attempt}"
            );
        }
        assert_eq!(
            driver_pod_name("sjns-data-control", long, 0),
            "nightly-c-3gjxs6fvr8vcfpfw502q9ah5qam5jt18fruw-driver"
        );
        assert_eq!(
            driver_pod_name("spark-jobs", "pi-test", 2),
            "pi-test-2-driver"
        );
    }

    #[test]
    fn base36_matches_java_big_integer() {
        assert_eq!(base36(&[]), "0");
        assert_eq!(base36(&[0, 0]), "0");
        assert_eq!(base36(&[35]), "z");
        assert_eq!(base36(&[36]), "10");
        assert_eq!(base36(&[0x01, 0x00]), "74");
        assert_eq!(base36(&[0xff; 4]), "1z141z3");
    }
}
