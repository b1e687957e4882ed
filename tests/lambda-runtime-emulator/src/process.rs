//! Running a real Lambda binary against the emulator: the environment Lambda
//! gives a `provided.al2023` function, captured output, kill on drop, and a
//! cold-start measurement.

use std::{
    ffi::OsString,
    fs::File,
    io::Write as _,
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::Value;
use tokio::{
    io::{AsyncRead, AsyncReadExt as _},
    process::{Child, Command},
    task::JoinHandle,
};

use crate::{
    emulator::RuntimeEmulator,
    error::{Error, Result},
    invocation::{DEFAULT_TIMEOUT, Invocation, InvokeRequest},
};

/// How many trailing lines of output an [`Error::ProcessExited`] carries.
const TAIL_LINES: usize = 20;

/// The environment Lambda sets for a custom-runtime function, for `emulator`'s
/// function and endpoint. `lambda_runtime` panics at start without
/// `AWS_LAMBDA_FUNCTION_NAME`, `_MEMORY_SIZE`, `_VERSION` or `AWS_LAMBDA_RUNTIME_API`.
pub fn lambda_env(emulator: &RuntimeEmulator, binary: &Path) -> Vec<(String, String)> {
    let f = &emulator.config().function;
    let task_root = binary
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| ".".to_owned());
    let log_stream = format!(
        "{}/[{}]{}",
        log_stream_date(),
        f.version,
        uuid::Uuid::new_v4().simple()
    );
    [
        ("AWS_LAMBDA_RUNTIME_API", emulator.runtime_api()),
        ("AWS_LAMBDA_FUNCTION_NAME", f.name.clone()),
        ("AWS_LAMBDA_FUNCTION_VERSION", f.version.clone()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", f.memory_mb.to_string()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", f.log_group()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", log_stream),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023".to_owned()),
        ("AWS_REGION", f.region.clone()),
        ("AWS_DEFAULT_REGION", f.region.clone()),
        ("_HANDLER", f.handler.clone()),
        ("LAMBDA_TASK_ROOT", task_root),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime".to_owned()),
        ("TZ", ":UTC".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Today's date as Lambda puts it at the head of log stream names
/// (`YYYY/MM/DD`), computed from the civil-from-days algorithm so the crate
/// needs no date library for one string.
fn log_stream_date() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        / 86_400;
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}/{month:02}/{day:02}")
}

/// Output captured from one stream, shared with the task that pumps it.
type Captured = Arc<Mutex<Vec<u8>>>;

/// How to start a [`LambdaProcess`]; see [`LambdaProcess::builder`].
#[derive(Debug)]
pub struct LambdaProcessBuilder {
    binary: PathBuf,
    env: Vec<(OsString, OsString)>,
    log_file: Option<PathBuf>,
    forward_output: bool,
}

impl LambdaProcessBuilder {
    /// Adds (or overrides) one environment variable.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Adds (or overrides) several environment variables.
    pub fn envs<K, V>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<OsString>,
        V: Into<OsString>,
    {
        self.env
            .extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Also appends everything the process writes (stdout and stderr) to
    /// this file, for reading after a failed test.
    pub fn log_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.log_file = Some(path.into());
        self
    }

    /// Also copies everything the process writes to this process's stderr
    /// as it arrives (the CLI does this; in tests, output shows only when the
    /// test fails, through the captured buffers).
    pub fn forward_output(mut self, forward: bool) -> Self {
        self.forward_output = forward;
        self
    }

    /// Starts the binary against `emulator`. Must run inside a Tokio runtime.
    pub fn spawn(self, emulator: &RuntimeEmulator) -> Result<LambdaProcess> {
        let spawn_error = |source| Error::Spawn {
            binary: self.binary.clone(),
            source,
        };
        let log = match &self.log_file {
            Some(path) => Some(Arc::new(Mutex::new(
                File::options()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(spawn_error)?,
            ))),
            None => None,
        };
        let mut command = Command::new(&self.binary);
        command
            .envs(lambda_env(emulator, &self.binary))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // The process must not outlive the test that started it, even
            // when the test panics.
            .kill_on_drop(true);
        let spawned_at = Instant::now();
        let mut child = command.spawn().map_err(spawn_error)?;
        let stdout = Captured::default();
        let stderr = Captured::default();
        let mut pumps = Vec::new();
        if let Some(out) = child.stdout.take() {
            pumps.push(pump(out, stdout.clone(), log.clone(), self.forward_output));
        }
        if let Some(err) = child.stderr.take() {
            pumps.push(pump(err, stderr.clone(), log, self.forward_output));
        }
        Ok(LambdaProcess {
            child,
            emulator: emulator.clone(),
            binary: self.binary,
            spawned_at,
            stdout,
            stderr,
            pumps,
        })
    }
}

/// Copies one output stream into its buffer (and the log file) until EOF.
fn pump(
    mut stream: impl AsyncRead + Unpin + Send + 'static,
    into: Captured,
    log: Option<Arc<Mutex<File>>>,
    forward: bool,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 8192];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    into.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend_from_slice(&buf[..n]);
                    if let Some(log) = &log {
                        // Best effort: a full disk must not fail the test itself.
                        let _ = log
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .write_all(&buf[..n]);
                    }
                    if forward {
                        let _ = std::io::stderr().write_all(&buf[..n]);
                    }
                }
            }
        }
    })
}

/// A real Lambda binary running against a [`RuntimeEmulator`], killed when
/// dropped.
#[derive(Debug)]
pub struct LambdaProcess {
    child: Child,
    emulator: RuntimeEmulator,
    binary: PathBuf,
    spawned_at: Instant,
    stdout: Captured,
    stderr: Captured,
    pumps: Vec<JoinHandle<()>>,
}

impl Drop for LambdaProcess {
    fn drop(&mut self) {
        // `kill_on_drop` ends the process; the pumps end at its EOF, but
        // abort them so nothing outlives the handle.
        for pump in &self.pumps {
            pump.abort();
        }
    }
}

impl LambdaProcess {
    /// Starts `binary` with the Lambda environment for `emulator` plus
    /// `extra_env` (which wins over the standard variables).
    pub fn spawn<K, V>(
        binary: impl AsRef<Path>,
        emulator: &RuntimeEmulator,
        extra_env: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self>
    where
        K: Into<OsString>,
        V: Into<OsString>,
    {
        Self::builder(binary).envs(extra_env).spawn(emulator)
    }

    /// A builder for environment variables and a log file.
    pub fn builder(binary: impl AsRef<Path>) -> LambdaProcessBuilder {
        LambdaProcessBuilder {
            binary: binary.as_ref().to_path_buf(),
            env: Vec::new(),
            log_file: None,
            forward_output: false,
        }
    }

    /// The binary that runs.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The OS process id, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// When the process was started (just before the spawn call).
    pub fn spawned_at(&self) -> Instant {
        self.spawned_at
    }

    /// The emulator it talks to.
    pub fn emulator(&self) -> &RuntimeEmulator {
        &self.emulator
    }

    /// Everything written to stdout so far (`lambda_runtime`'s default
    /// tracing subscriber logs here).
    pub fn stdout(&self) -> String {
        lossy(&self.stdout)
    }

    /// Everything written to stderr so far (panics land here).
    pub fn stderr(&self) -> String {
        lossy(&self.stderr)
    }

    /// Invokes through the emulator, but gives up as soon as the process
    /// exits instead of waiting out the timeout.
    pub async fn invoke(&mut self, event: Value, timeout: Duration) -> Result<Invocation> {
        self.invoke_with(InvokeRequest::new(event, timeout)).await
    }

    /// [`invoke`](Self::invoke) with a full [`InvokeRequest`].
    pub async fn invoke_with(&mut self, request: InvokeRequest) -> Result<Invocation> {
        let emulator = self.emulator.clone();
        let invocation = emulator.invoke_with(request);
        tokio::pin!(invocation);
        tokio::select! {
            // The answer is recorded before the runtime's POST returns, so
            // before any exit that follows it: poll the invocation first.
            biased;
            result = &mut invocation => result,
            status = self.child.wait() => {
                let status = status?;
                // Let the pumps drain what the process wrote before dying.
                for pump in &mut self.pumps {
                    let _ = tokio::time::timeout(Duration::from_secs(1), pump).await;
                }
                self.pumps.clear();
                // An init error posted just before exiting is still the
                // better answer than "exited".
                match futures_now(&mut invocation) {
                    Some(result) => result,
                    None => Err(Error::ProcessExited { status, output_tail: self.output_tail() }),
                }
            }
        }
    }

    /// The exit status, if it has exited.
    pub fn try_exit_status(&mut self) -> Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub async fn wait_for_exit(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => Ok(Some(status?)),
            Err(_) => Ok(None),
        }
    }

    /// Kills the process and waits for it.
    pub async fn kill(&mut self) -> Result<()> {
        self.child.kill().await?;
        Ok(())
    }

    fn output_tail(&self) -> String {
        let mut tail = last_lines(&self.stderr(), TAIL_LINES);
        let out = last_lines(&self.stdout(), TAIL_LINES);
        if !out.is_empty() {
            if !tail.is_empty() {
                tail.push('\n');
            }
            tail.push_str("[stdout]\n");
            tail.push_str(&out);
        }
        tail
    }
}

/// Polls a future once without waiting.
fn futures_now<F: std::future::Future + Unpin>(future: &mut F) -> Option<F::Output> {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    match std::pin::Pin::new(future).poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

fn lossy(captured: &Captured) -> String {
    String::from_utf8_lossy(&captured.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A cold start: a fresh process's first invocation.
#[derive(Debug, Clone)]
pub struct ColdStart {
    /// Spawn to the first `GET /next`: the process start plus the function's
    /// init (what Lambda reports as "Init Duration").
    pub init: Duration,
    /// Spawn to the first answer arriving at the emulator: init plus the
    /// first invocation.
    pub first_response: Duration,
    /// The first invocation itself.
    pub invocation: Invocation,
}

/// Measures a cold start of `binary` with `event`: a fresh emulator, the
/// invocation queued at once, the process spawned, the clock stopped when the
/// answer arrives.
pub async fn cold_start(binary: impl AsRef<Path>, event: Value) -> Result<ColdStart> {
    cold_start_with_env(binary, event, std::iter::empty::<(String, String)>()).await
}

/// [`cold_start`] with extra environment variables for the function.
pub async fn cold_start_with_env<K, V>(
    binary: impl AsRef<Path>,
    event: Value,
    extra_env: impl IntoIterator<Item = (K, V)>,
) -> Result<ColdStart>
where
    K: Into<OsString>,
    V: Into<OsString>,
{
    let emulator = RuntimeEmulator::start().await?;
    let mut process = LambdaProcess::spawn(binary, &emulator, extra_env)?;
    // The invocation is queued microseconds after the spawn, long before the
    // process can poll, so its first `GET /next` is answered at once and the
    // measurement holds no polling gap.
    let invocation = process.invoke(event, DEFAULT_TIMEOUT).await?;
    let spawned_at = process.spawned_at();
    let init = emulator.first_poll_at().map_or(Duration::ZERO, |at| {
        at.saturating_duration_since(spawned_at)
    });
    let first_response = invocation.finished_at.saturating_duration_since(spawned_at);
    process.kill().await?;
    emulator.shutdown().await;
    Ok(ColdStart {
        init,
        first_response,
        invocation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_is_civil() {
        let d = log_stream_date();
        assert_eq!(d.len(), 10);
        assert_eq!(&d[4..5], "/");
        let year: i32 = d[..4].parse().unwrap();
        assert!(year >= 2024);
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(last_lines("a\nb\nc", 2), "b\nc");
        assert_eq!(last_lines("", 2), "");
    }
}
