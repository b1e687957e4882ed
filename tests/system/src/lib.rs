//! Spark Gateway's system tests live in `tests/system.rs` (one binary, modules under `tests/system/`);
//! this library is empty. They need the local world: `infra/local/up`.
