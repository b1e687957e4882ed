//! The library's one error type: what can go wrong between a test and the
//! emulated Lambda service, as opposed to what the function itself reported
//! (that is an [`Outcome`](crate::Outcome), not an error).

use std::{net::SocketAddr, path::PathBuf, process::ExitStatus, time::Duration};

use crate::invocation::FunctionError;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the emulator, a [`LambdaProcess`](crate::LambdaProcess) or a
/// cold-start measurement can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Runtime API listener could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why binding failed.
        #[source]
        source: std::io::Error,
    },

    /// The event could not be serialized to JSON.
    #[error("cannot serialize the invocation event")]
    Event(#[source] serde_json::Error),

    /// A client context or Cognito identity cannot be sent as an HTTP header
    /// (header values must be visible ASCII).
    #[error("{header} cannot be sent as an HTTP header value")]
    InvalidHeader {
        /// The header that would have carried it.
        header: &'static str,
    },

    /// No runtime asked for the invocation (`GET .../invocation/next`) in time:
    /// usually the function process is not running or is stuck in its init.
    #[error("no runtime picked up invocation {request_id} within {waited:?}")]
    NotPickedUp {
        /// The invocation's request id.
        request_id: String,
        /// How long the emulator waited.
        waited: Duration,
    },

    /// The function took the invocation but answered neither `/response` nor
    /// `/error` before its deadline (what Lambda reports as "Task timed out").
    #[error("invocation {request_id} timed out after {timeout:?}")]
    Timeout {
        /// The invocation's request id.
        request_id: String,
        /// The function timeout that was exceeded.
        timeout: Duration,
    },

    /// The function answered with an error where the caller asked for a
    /// response (see [`Invocation::into_response`](crate::Invocation::into_response)).
    #[error("invocation {request_id} failed: {}: {}", error.error_type, error.error_message)]
    Function {
        /// The invocation's request id.
        request_id: String,
        /// What the function (or its init) reported (boxed to keep
        /// `Result`s small).
        error: Box<FunctionError>,
    },

    /// The function answered with something other than a buffered JSON
    /// response where one was asked for.
    #[error("invocation {request_id} did not answer with a JSON response: {outcome}")]
    NotJson {
        /// The invocation's request id.
        request_id: String,
        /// A short description of what it answered instead.
        outcome: String,
    },

    /// The emulator was shut down while the invocation was pending.
    #[error("the runtime emulator was shut down")]
    ShutDown,

    /// The function binary could not be started.
    #[error("cannot start {}", binary.display())]
    Spawn {
        /// The binary that was to run.
        binary: PathBuf,
        /// Why it did not start.
        #[source]
        source: std::io::Error,
    },

    /// The function process exited while an invocation was waiting on it.
    #[error(
        "the function process exited ({status}) before answering; its output ends with:\n{output_tail}"
    )]
    ProcessExited {
        /// How it exited.
        status: ExitStatus,
        /// The last lines it wrote to stderr and stdout, to say why.
        output_tail: String,
    },

    /// Waiting on, killing or logging the function process failed.
    #[error("function process I/O failed")]
    Io(#[from] std::io::Error),
}
