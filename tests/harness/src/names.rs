//! Unique, DNS-safe names so tests can share one world and run in parallel.

/// `prefix` plus a random suffix: lowercase letters and digits, valid as a Kubernetes name, an SQS queue
/// name and a Kafka topic.
pub fn unique_name(prefix: &str) -> String {
    let suffix: String = (0..8)
        .map(|_| {
            let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
            char::from(alphabet[fastrand::usize(..alphabet.len())])
        })
        .collect();
    format!("{prefix}-{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_differ_and_stay_dns_safe() {
        let a = unique_name("it");
        let b = unique_name("it");
        assert_ne!(a, b);
        assert!(a.starts_with("it-") && a.len() == 11);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        );
    }
}
