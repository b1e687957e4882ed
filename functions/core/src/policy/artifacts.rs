//! Where a job's code and files may come from. Operator 0.5.0 builds the driver's submission inside its
//! own JVM, so an entry Spark would read as a local file there (`file:`, or no scheme at all) is read
//! from the operator's pod, and with `spark.kubernetes.file.upload.path` uploaded elsewhere. Only URI
//! schemes a cluster allows pass (`local://` means "in the image", resolved inside the job's own pod),
//! optionally only from allowed hosts; a comma inside one entry would split into several in Spark's
//! comma-separated lists, so it is refused.

use std::collections::BTreeMap;

/// Schemes allowed when a cluster names none.
pub const DEFAULT_SCHEMES: [&str; 3] = ["local", "s3a", "https"];
/// Schemes refused whatever a cluster allows: they read the operator's own files.
pub const NEVER_ALLOWED_SCHEMES: [&str; 1] = ["file"];
/// Longest artifact URI.
pub const MAX_URI_CHARS: usize = 2048;

/// Why an artifact entry is refused: `(rule, message)`.
pub type Refusal = (&'static str, String);

/// Checks one entry against the allowed `schemes` and, per scheme, `hosts`.
pub fn check(
    entry: &str,
    schemes: &[String],
    hosts: &BTreeMap<String, Vec<String>>,
) -> Result<(), Refusal> {
    if entry.len() > MAX_URI_CHARS {
        return Err((
            "max_length",
            format!("longer than {MAX_URI_CHARS} characters"),
        ));
    }
    if entry.contains(',') {
        return Err((
            "artifact_list",
            "one entry may not hold a ',': Spark would split it into several".into(),
        ));
    }
    if entry.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err((
            "artifact_uri",
            format!("{entry:?} contains whitespace or control characters"),
        ));
    }
    let url = match url::Url::parse(entry) {
        Ok(url) => url,
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            return Err((
                "artifact_scheme",
                format!(
                    "{entry:?} has no URI scheme, so Spark would read it from the operator's own filesystem; use local:// for a file in the image, or one of: {}",
                    scheme_list(schemes)
                ),
            ));
        }
        Err(error) => return Err(("artifact_uri", format!("{entry:?} is not a URI: {error}"))),
    };
    let scheme = url.scheme();
    if NEVER_ALLOWED_SCHEMES.contains(&scheme) || !schemes.iter().any(|s| s == scheme) {
        return Err((
            "artifact_scheme",
            format!(
                "scheme {scheme}: is not allowed (allowed: {})",
                scheme_list(schemes)
            ),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err((
            "artifact_uri",
            "credentials in an artifact URI are refused".into(),
        ));
    }
    let host = url.host_str().unwrap_or_default();
    if scheme == "local" {
        if !host.is_empty() {
            return Err((
                "artifact_uri",
                format!(
                    "local:// URIs name a path in the image (local:///path), not a host ({host:?})"
                ),
            ));
        }
    } else if host.is_empty() {
        return Err(("artifact_uri", format!("{entry:?} names no host")));
    }
    if let Some(allowed) = hosts.get(scheme)
        && !allowed.iter().any(|h| h.eq_ignore_ascii_case(host))
    {
        return Err((
            "artifact_host",
            format!(
                "host {host:?} is not allowed for {scheme}: (allowed: {})",
                allowed.join(", ")
            ),
        ));
    }
    Ok(())
}

fn scheme_list(schemes: &[String]) -> String {
    schemes
        .iter()
        .map(|s| format!("{s}://"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schemes() -> Vec<String> {
        DEFAULT_SCHEMES.iter().map(|s| s.to_string()).collect()
    }

    fn rule(entry: &str, hosts: &BTreeMap<String, Vec<String>>) -> Option<&'static str> {
        check(entry, &schemes(), hosts).err().map(|(rule, _)| rule)
    }

    #[test]
    fn allowed_schemes_pass_and_operator_files_do_not() {
        let none = BTreeMap::new();
        for ok in [
            "local:///opt/spark/examples/src/main/python/pi.py",
            "s3a://bucket/jobs/app.jar",
            "https://artifacts.example.com/app.jar",
        ] {
            assert_eq!(rule(ok, &none), None, "{ok}");
        }
        for (bad, expected) in [
            (
                "file:///var/run/secrets/kubernetes.io/serviceaccount/token",
                "artifact_scheme",
            ),
            (
                "/var/run/secrets/kubernetes.io/serviceaccount/token",
                "artifact_scheme",
            ),
            ("app.py", "artifact_scheme"),
            ("http://example.com/app.jar", "artifact_scheme"),
            ("hdfs://nn/app.jar", "artifact_scheme"),
            ("local:///a.py,file:///etc/passwd", "artifact_list"),
            ("https://user:pw@example.com/a.jar", "artifact_uri"),
            ("local://host/a.py", "artifact_uri"),
            ("local:///a b.py", "artifact_uri"),
        ] {
            assert_eq!(rule(bad, &none), Some(expected), "{bad}");
        }
        // `file` stays refused even where a platform lists it.
        let with_file = vec!["file".to_string()];
        assert!(check("file:///etc/passwd", &with_file, &none).is_err());
    }

    #[test]
    fn hosts_are_checked_where_a_scheme_has_a_list() {
        let hosts = BTreeMap::from([(
            "https".to_string(),
            vec!["artifacts.example.com".to_string()],
        )]);
        assert_eq!(rule("https://artifacts.example.com/a.jar", &hosts), None);
        assert_eq!(
            rule("https://evil.example.net/a.jar", &hosts),
            Some("artifact_host")
        );
        assert_eq!(rule("s3a://any-bucket/a.jar", &hosts), None);
    }
}
