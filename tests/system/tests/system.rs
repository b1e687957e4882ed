//! System tests: real servers over real connections (LocalStack, OpenBao, Tansu, the Kubernetes API
//! emulator over TLS, the operator simulator, the real `kubectl`). One binary, so the workspace links
//! it once; each module covers one part of the system.
//!
//! Start the world first: `infra/local/up` (the `make test` suite does).

mod system {
    pub mod callbacks;
    pub mod fixture;
    pub mod functions;
    pub mod gateway;
    pub mod guardrails;
    pub mod lambda;
    pub mod local_world;
    pub mod rbac;
    pub mod real_spark;
    pub mod records;
    pub mod replays;
    pub mod secure_kafka;
}
