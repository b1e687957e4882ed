//! A Lambda Runtime API emulator, so tests can run the **real** Lambda
//! binaries (`lambda_runtime` 1.x) where LocalStack cannot execute functions.
//!
//! ```no_run
//! # async fn demo() -> Result<(), lambda_runtime_emulator::Error> {
//! use std::time::Duration;
//! use lambda_runtime_emulator::{LambdaProcess, RuntimeEmulator};
//!
//! let emulator = RuntimeEmulator::start().await?;        // 127.0.0.1:<free port>
//! let mut function = LambdaProcess::spawn("target/debug/my-fn", &emulator, [("RUST_LOG", "info")])?;
//! let invocation = function.invoke(serde_json::json!({"hello": 1}), Duration::from_secs(10)).await?;
//! let response = invocation.into_response()?;            // or .error() for {errorType, errorMessage}
//! # let _ = response;
//! let history = emulator.invocations();                   // every outcome, in order
//! # let _ = history;
//! emulator.shutdown().await;                              // `function` is killed when dropped
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`invocation`]: what a test asks for and gets back (pure data).
//! - `emulator`: the queue, in-flight invocations, history; [`RuntimeEmulator`].
//! - `server`: the HTTP/1.1 Runtime API on hyper 1 (routes in its docs).
//! - `process`: [`LambdaProcess`], the Lambda environment, [`cold_start`].
//! - `main.rs`: the `lambda-runtime-emulator` CLI; `bin/echo_lambda.rs`: the
//!   test function.
//!
//! # Behaviour worth knowing
//! - `GET /next` long-polls with no timeout, like the real API; each event is
//!   handed to exactly one poller, oldest first.
//! - The function timeout given to `invoke` is both the deadline
//!   (`Lambda-Runtime-Deadline-Ms` = dispatch time + timeout) and how long the
//!   emulator waits for a runtime to take the invocation. A late answer is
//!   refused with 410, which `lambda_runtime` logs and survives.
//! - `Lambda-Runtime-Invocation-Id` is sent with every event; `lambda_runtime`
//!   1.5+ echoes it, and an answer with a different one is refused as stale.
//! - An init error fails every queued invocation; when none is queued, the
//!   next one to be queued gets it (Lambda fails the invocation that would
//!   have run in the environment whose init failed).
//! - Streaming responses are accepted and recorded whole (prelude, payload,
//!   mid-stream error), not streamed to the caller.
//! - Nothing is executed or isolated: the emulator does not start, freeze or
//!   kill functions. [`LambdaProcess`] starts one and kills it on drop.

pub mod invocation;

mod emulator;
mod error;
mod process;
mod server;

pub use emulator::{EmulatorConfig, FunctionConfig, RuntimeEmulator};
pub use error::{Error, Result};
pub use invocation::{
    DEFAULT_TIMEOUT, FunctionError, Invocation, InvokeRequest, Outcome, StreamedResponse,
};
pub use process::{
    ColdStart, LambdaProcess, LambdaProcessBuilder, cold_start, cold_start_with_env, lambda_env,
};
