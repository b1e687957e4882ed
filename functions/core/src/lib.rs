//! Spark Gateway's pure core, shared by the Lambda functions, the consumer and the status function.
//! No I/O and no async: every function here is a plain transformation tested with fixtures.
//!
//! # Layout
//! - [`policy`]: may this request run on this cluster, and in what form? An allow-list, caps on what
//!   the pods really get, all violations at once, each naming its field; what passes is [`Admitted`].
//! - [`apache_v1`]: the operator target: the `spark.apache.org/v1` resource, what its states mean,
//!   its status as typed values, the names the operator derives.
//! - [`mapping`]: admitted request to `spark.apache.org/v1` SparkApplication, deterministic.
//! - [`status`]: SparkApplication read back to the status answer and the job record, outcome, failure
//!   and usage included; [`usage`]: what an application used.
//! - [`disposition`]: the permanent/transient error taxonomy that decides ack, retry or dead-letter.
//! - [`labels`]: the labels and annotations that mark the gateway's applications.
//! - [`links`]: Spark UI, history server and log links from per-cluster URL templates.
//! - [`names`], [`quantity`]: Kubernetes name rules and Spark resource strings.
//!
//! ```text
//! JobRequest ──policy.admit──▶ violations? ──yes──▶ RequestRejected (permanent)
//!                │ no: Admitted (defaults filled, keys canonical)
//!                ▼
//!             mapping ──▶ SparkApplication ──▶ (adapters) cluster proxy
//! ```

pub mod apache_v1;
pub mod disposition;
pub mod labels;
pub mod links;
pub mod mapping;
pub mod names;
pub mod policy;
pub mod quantity;
pub mod status;
pub mod usage;

pub use disposition::{Classify, Disposition, KubeAnswer, error_chain, kube_answer};
pub use mapping::spark_application;
pub use policy::{Admitted, Policy};
pub use status::job_status;
