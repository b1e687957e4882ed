//! Kubernetes naming rules, as the API server applies them, so a bad name is refused with the rule it
//! breaks before anything is sent to a cluster. The names the operator derives for what it creates are
//! the operator target's: [`crate::apache_v1::spark_app_id`].

/// A DNS-1123 label: 1-63 lowercase letters, digits and `-`, starting and ending alphanumeric
/// (namespaces).
pub fn is_dns1123_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// A DNS-1035 label: a DNS-1123 label that starts with a letter. Spark derives Service names from the
/// application name, and Services need this form, so application names are held to it.
pub fn is_dns1035_label(name: &str) -> bool {
    is_dns1123_label(name) && name.as_bytes()[0].is_ascii_lowercase()
}

/// A DNS-1123 subdomain: dot-separated DNS-1123 labels, at most 253 characters (label-key prefixes).
pub fn is_dns1123_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_dns1123_label)
}

/// A label value: empty, or at most 63 alphanumerics, `-`, `_`, `.`, starting and ending alphanumeric.
pub fn is_label_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.is_empty()
        || (bytes.len() <= 63
            && bytes[0].is_ascii_alphanumeric()
            && bytes[bytes.len() - 1].is_ascii_alphanumeric()
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')))
}

/// A label key: an optional DNS-1123 subdomain prefix and `/`, then a name of at most 63 alphanumerics,
/// `-`, `_`, `.`, starting and ending alphanumeric.
pub fn is_label_key(key: &str) -> bool {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    prefix.is_none_or(is_dns1123_subdomain) && !name.is_empty() && is_label_value(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_dns_1123() {
        assert!(is_dns1123_label("sjns-data-control"));
        assert!(is_dns1123_label("0abc"));
        for bad in ["", "-a", "a-", "Upper", "dot.ted", &"a".repeat(64)] {
            assert!(!is_dns1123_label(bad), "{bad}");
        }
    }

    #[test]
    fn application_names_must_start_with_a_letter() {
        assert!(is_dns1035_label("pi-test"));
        assert!(!is_dns1035_label("1pi"));
    }

    #[test]
    fn label_keys_and_values() {
        assert!(is_label_key("team"));
        assert!(is_label_key("example.com/team_name"));
        assert!(!is_label_key("Example.com/team"));
        assert!(!is_label_key("a/b/c"));
        assert!(!is_label_key("/team"));
        assert!(is_label_value(""));
        assert!(is_label_value("nightly_pi.v2"));
        assert!(!is_label_value("has space"));
        assert!(!is_label_value(&"v".repeat(64)));
    }
}
