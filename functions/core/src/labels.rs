//! The labels and annotations the gateway puts on SparkApplications: how it later recognises its own
//! applications, finds the request behind one, and tells a duplicate delivery from a conflicting
//! request.

/// Standard "managed by" label; its value marks applications the gateway created.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`] on the gateway's applications (the watcher selects on it).
pub const MANAGED_BY_VALUE: &str = "spark-gateway";
/// The `request_id` of the submit that created the application.
pub const REQUEST_ID_LABEL: &str = "spark-gateway.io/request-id";
/// The gateway's name of the cluster the application was sent to.
pub const CLUSTER_ANNOTATION: &str = "spark-gateway.io/cluster";
/// Who submitted the application (free text, hence an annotation).
pub const SUBMITTED_BY_ANNOTATION: &str = "spark-gateway.io/submitted-by";
/// W3C trace context of the submit request.
pub const TRACEPARENT_ANNOTATION: &str = "spark-gateway.io/traceparent";
/// The submit's admitted notification targets, as a JSON array of `NotifyTarget`s, which the watcher
/// copies into every event of the application.
pub const NOTIFY_ANNOTATION: &str = "spark-gateway.io/notify";
/// `sha256:<hex>` of the mapped `spec`, so a redelivered request can be checked for sameness.
pub const SPEC_HASH_ANNOTATION: &str = "spark-gateway.io/spec-hash";

/// Label-key prefixes requests may not use: Kubernetes' own (and their subdomains, as Kubernetes
/// reserves them), the operator's (`spark.operator/sentinel` would make the operator treat the
/// application as its health probe) and the gateway's. Subdomains of the gateway's prefix stay free:
/// `operator-sim.spark-gateway.io/` is how the local world's simulator is steered.
const RESERVED_LABEL_DOMAINS: [&str; 2] = ["kubernetes.io", "k8s.io"];
const RESERVED_LABEL_PREFIXES: [&str; 2] = ["spark.operator", "spark-gateway.io"];

/// Whether a label key belongs to Kubernetes, the operator or the gateway.
pub fn is_reserved_label(key: &str) -> bool {
    let Some((prefix, _)) = key.split_once('/') else {
        return false;
    };
    let prefix = prefix.to_ascii_lowercase();
    RESERVED_LABEL_PREFIXES.contains(&prefix.as_str())
        || RESERVED_LABEL_DOMAINS
            .iter()
            .any(|domain| prefix == *domain || prefix.ends_with(&format!(".{domain}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_operator_and_gateway_prefixes_are_reserved() {
        for key in [
            MANAGED_BY_LABEL,
            REQUEST_ID_LABEL,
            "kubernetes.io/metadata.name",
            "node-role.kubernetes.io/control-plane",
            "k8s.io/x",
            "spark.operator/sentinel",
            "Spark.Operator/name",
        ] {
            assert!(is_reserved_label(key), "{key}");
        }
        for key in [
            "team",
            "example.com/team",
            "operator-sim.spark-gateway.io/scenario",
            "notkubernetes.io/x",
        ] {
            assert!(!is_reserved_label(key), "{key}");
        }
    }
}
