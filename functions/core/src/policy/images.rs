//! Container image references, normalised the way a container runtime resolves them, so an allow-list
//! entry means one set of images however a request spells them: `apache/spark:4.1.0`,
//! `docker.io/apache/spark:4.1.0` and `index.docker.io/apache/spark:4.1.0` are one image, and the prefix
//! `apache/spark` does not admit `apache/spark-evil`.
//!
//! Grammar: the distribution project's reference grammar (`[domain/]path[:tag][@digest]`), with Docker's
//! normalisation: no domain means `docker.io`, a one-component path on Docker Hub gets `library/`, and
//! neither tag nor digest means `:latest`.

const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_ALIASES: [&str; 2] = ["index.docker.io", "registry-1.docker.io"];
/// Longest reference accepted (the distribution grammar allows 255 characters of name).
pub const MAX_REFERENCE_CHARS: usize = 512;

/// A reference in its normalised form, or why it is not one.
pub fn normalize(reference: &str) -> Result<String, String> {
    if reference.len() > MAX_REFERENCE_CHARS {
        return Err(format!("longer than {MAX_REFERENCE_CHARS} characters"));
    }
    let (name_and_tag, digest) = match reference.split_once('@') {
        Some((rest, digest)) => {
            check_digest(digest)?;
            (rest, Some(digest))
        }
        None => (reference, None),
    };
    let (domain, remainder) = split_domain(name_and_tag);
    // A tag is a `:` after the last `/` (a `:` before it belongs to the registry's port).
    let (path, tag) = match remainder.rsplit_once(':') {
        Some((path, tag)) if !tag.contains('/') => (path, Some(tag)),
        _ => (remainder, None),
    };
    if let Some(tag) = tag {
        check_tag(tag)?;
    }
    check_path(path)?;
    let domain = domain.map(check_domain).transpose()?;
    let domain = match domain {
        Some(d) if DOCKER_HUB_ALIASES.contains(&d) => DOCKER_HUB,
        Some(d) => d,
        None => DOCKER_HUB,
    };
    let path = if domain == DOCKER_HUB && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_string()
    };
    let mut out = format!("{domain}/{path}");
    match (tag, digest) {
        (Some(tag), _) => {
            out.push(':');
            out.push_str(tag);
        }
        (None, None) => out.push_str(":latest"),
        (None, Some(_)) => {}
    }
    if let Some(digest) = digest {
        out.push('@');
        out.push_str(digest);
    }
    Ok(out)
}

/// An allow-list prefix in the same normalised form (its domain and `library/`; no tag is added).
pub fn normalize_prefix(prefix: &str) -> Result<String, String> {
    if prefix.is_empty() || prefix.chars().any(char::is_whitespace) {
        return Err(format!("{prefix:?} is not an image prefix"));
    }
    let (domain, remainder) = split_domain(prefix);
    let domain = match domain {
        Some(d) if DOCKER_HUB_ALIASES.contains(&d) => DOCKER_HUB,
        Some(d) => d,
        None => DOCKER_HUB,
    };
    if remainder.is_empty() {
        return Ok(format!("{domain}/"));
    }
    // A one-component Docker Hub name is an official image, as in `normalize`.
    Ok(if domain == DOCKER_HUB && !remainder.contains('/') {
        format!("{domain}/library/{remainder}")
    } else {
        format!("{domain}/{remainder}")
    })
}

/// Whether the normalised `image` falls under the normalised `prefix`: it starts with it, at a component
/// boundary (`/`, `:` or `@` ends the prefix or follows it).
pub fn matches_prefix(image: &str, prefix: &str) -> bool {
    // `repo:` means the repository at any tag or digest: a digest-pinned image is the safer spelling.
    if let Some(repository) = prefix.strip_suffix(':') {
        return image
            .strip_prefix(repository)
            .is_some_and(|rest| rest.starts_with([':', '@']));
    }
    let Some(rest) = image.strip_prefix(prefix) else {
        return false;
    };
    prefix.ends_with(['/', '@']) || rest.is_empty() || rest.starts_with(['/', ':', '@'])
}

/// The first component is a registry when it looks like a host: it has a `.` or a `:` or is
/// `localhost` (Docker's rule).
fn split_domain(reference: &str) -> (Option<&str>, &str) {
    match reference.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (Some(first), rest)
        }
        _ => (None, reference),
    }
}

fn check_domain(domain: &str) -> Result<&str, String> {
    let (host, port) = match domain.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (domain, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    if host_ok && port_ok {
        Ok(domain)
    } else {
        Err(format!("registry {domain:?} is not a host name"))
    }
}

/// Path components: lowercase alphanumerics separated by `.`, `_`, `__` or runs of `-`.
fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("the repository name is empty".into());
    }
    for component in path.split('/') {
        let bytes = component.as_bytes();
        let ok = !bytes.is_empty()
            && bytes[0].is_ascii_alphanumeric()
            && bytes[bytes.len() - 1].is_ascii_alphanumeric()
            && bytes.iter().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
            && !component.contains("..")
            && !component.contains("___")
            && !component.contains("._")
            && !component.contains("_.");
        if !ok {
            return Err(format!(
                "repository component {component:?} must be lowercase letters and digits separated by '.', '_' or '-'"
            ));
        }
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<(), String> {
    let bytes = tag.as_bytes();
    let ok = (1..=128).contains(&bytes.len())
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!("tag {tag:?} is not a valid image tag"))
    }
}

fn check_digest(digest: &str) -> Result<(), String> {
    let ok = digest.split_once(':').is_some_and(|(algorithm, hex)| {
        matches!(algorithm, "sha256" | "sha512")
            && hex.len() == if algorithm == "sha256" { 64 } else { 128 }
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "digest {digest:?} is not sha256:<64 hex> or sha512:<128 hex>"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_normalise_like_a_container_runtime() {
        for (input, expected) in [
            ("apache/spark:4.1.0", "docker.io/apache/spark:4.1.0"),
            (
                "docker.io/apache/spark:4.1.0",
                "docker.io/apache/spark:4.1.0",
            ),
            (
                "index.docker.io/apache/spark:4.1.0",
                "docker.io/apache/spark:4.1.0",
            ),
            ("ubuntu", "docker.io/library/ubuntu:latest"),
            ("docker.io/ubuntu:22.04", "docker.io/library/ubuntu:22.04"),
            ("localhost:5000/spark:1", "localhost:5000/spark:1"),
            (
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/spark/jobs:2",
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/spark/jobs:2",
            ),
        ] {
            assert_eq!(normalize(input).as_deref(), Ok(expected), "{input}");
        }
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            normalize(&format!("apache/spark@{digest}")).unwrap(),
            format!("docker.io/apache/spark@{digest}")
        );
    }

    #[test]
    fn malformed_references_are_refused() {
        for bad in [
            "",
            "Apache/Spark:4",
            "apache/spark:",
            "apache//spark",
            "apache/spark:4 --privileged",
            "apache/spark@sha256:abc",
            "-evil/x",
            "apache/spark:4\n",
        ] {
            assert!(normalize(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn prefixes_match_at_component_boundaries_only() {
        let prefix = normalize_prefix("apache/spark").unwrap();
        assert_eq!(prefix, "docker.io/apache/spark");
        assert!(matches_prefix(
            &normalize("apache/spark:4.1.0").unwrap(),
            &prefix
        ));
        assert!(matches_prefix(
            &normalize("docker.io/apache/spark").unwrap(),
            &prefix
        ));
        assert!(matches_prefix(
            &normalize("apache/spark/sub:1").unwrap(),
            &prefix
        ));
        assert!(!matches_prefix(
            &normalize("apache/spark-evil:1").unwrap(),
            &prefix
        ));
        assert!(!matches_prefix(
            &normalize("evil.io/apache/spark:1").unwrap(),
            &prefix
        ));

        let tagged = normalize_prefix("apache/spark:").unwrap();
        assert_eq!(tagged, "docker.io/apache/spark:");
        assert!(matches_prefix(
            &normalize("docker.io/apache/spark:4.1.0").unwrap(),
            &tagged
        ));
        assert!(!matches_prefix(
            &normalize("apache/spark-evil:4").unwrap(),
            &tagged
        ));

        let registry = normalize_prefix("123456789012.dkr.ecr.us-east-1.amazonaws.com/").unwrap();
        assert!(matches_prefix(
            &normalize("123456789012.dkr.ecr.us-east-1.amazonaws.com/spark:1").unwrap(),
            &registry
        ));
        assert_eq!(
            normalize_prefix("ubuntu").unwrap(),
            "docker.io/library/ubuntu"
        );
        assert_eq!(
            normalize_prefix("library/ubuntu").unwrap(),
            "docker.io/library/ubuntu"
        );
    }
}
