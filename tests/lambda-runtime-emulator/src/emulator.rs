//! The emulated Lambda service: the invocation queue, what is in flight, the
//! history, and the [`RuntimeEmulator`] handle tests hold.
//!
//! The bookkeeping ([`State`]) is synchronous and lives behind one mutex that
//! is never held across an `.await`; the HTTP side ([`crate::server`]) and the
//! test side ([`RuntimeEmulator::invoke_with`]) meet only through it and two
//! one-shot channels per invocation (dispatched, finished).

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    net::{Ipv4Addr, SocketAddr},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use http::HeaderValue;
use serde_json::Value;
use tokio::{
    net::TcpListener,
    sync::{Notify, oneshot, watch},
    task::JoinHandle,
};

use crate::{
    error::{Error, Result},
    invocation::{DEFAULT_TIMEOUT, FunctionError, Invocation, InvokeRequest, Outcome},
};

/// The function being emulated: what the ARN, the environment and the log
/// names are made of.
#[derive(Debug, Clone)]
pub struct FunctionConfig {
    /// `AWS_LAMBDA_FUNCTION_NAME`.
    pub name: String,
    /// `AWS_LAMBDA_FUNCTION_VERSION`.
    pub version: String,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, in MB.
    pub memory_mb: u32,
    /// `AWS_REGION` and the ARN's region.
    pub region: String,
    /// The ARN's account (LocalStack's `000000000000` by default).
    pub account_id: String,
    /// `_HANDLER` (meaningless to a Rust binary, but Lambda always sets it).
    pub handler: String,
    /// The function timeout used by the `Invoke` API route and the CLI
    /// (library callers pass one to each `invoke`).
    pub timeout: Duration,
}

impl Default for FunctionConfig {
    fn default() -> Self {
        Self {
            name: "spark-gateway-test".to_owned(),
            version: "$LATEST".to_owned(),
            memory_mb: 128,
            region: "us-east-1".to_owned(),
            account_id: "000000000000".to_owned(),
            handler: "bootstrap".to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl FunctionConfig {
    /// The function's ARN as sent in `Lambda-Runtime-Invoked-Function-Arn`.
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{}",
            self.region, self.account_id, self.name
        )
    }

    /// `AWS_LAMBDA_LOG_GROUP_NAME`.
    pub fn log_group(&self) -> String {
        format!("/aws/lambda/{}", self.name)
    }
}

/// How to run the emulator.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The emulated function.
    pub function: FunctionConfig,
    /// Send `Lambda-Runtime-Invocation-Id` with each event, as current Lambda
    /// does; `lambda_runtime` >= 1.5 echoes it and a mismatch is rejected.
    pub send_invocation_id: bool,
    /// Largest buffered response accepted (Lambda's synchronous limit is 6 MB);
    /// a larger one is answered 413 and recorded as
    /// `Function.ResponseSizeTooLarge`.
    pub max_response_bytes: usize,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            function: FunctionConfig::default(),
            send_invocation_id: true,
            max_response_bytes: 6 * 1024 * 1024,
        }
    }
}

/// A queued invocation waiting for `GET /next`.
struct Pending {
    request_id: String,
    invocation_id: String,
    event: Value,
    body: Bytes,
    headers: ExtraHeaders,
    timeout: Duration,
    queued_at: Instant,
    dispatched: oneshot::Sender<Instant>,
    done: oneshot::Sender<Invocation>,
}

/// Optional per-invocation headers, already validated as header values.
#[derive(Default, Clone)]
pub(crate) struct ExtraHeaders {
    pub(crate) client_context: Option<HeaderValue>,
    pub(crate) cognito_identity: Option<HeaderValue>,
    pub(crate) tenant_id: Option<HeaderValue>,
    pub(crate) trace_id: Option<String>,
}

/// A dispatched invocation waiting for its answer.
struct Active {
    request_id: String,
    invocation_id: String,
    event: Value,
    deadline_ms: u64,
    trace_id: String,
    queued_at: Instant,
    dispatched_at: Instant,
    done: oneshot::Sender<Invocation>,
}

/// What the server needs to answer `GET /next`.
pub(crate) struct Dispatch {
    pub(crate) request_id: String,
    pub(crate) invocation_id: Option<String>,
    pub(crate) deadline_ms: u64,
    pub(crate) function_arn: String,
    pub(crate) trace_id: String,
    pub(crate) headers: ExtraHeaders,
    pub(crate) body: Bytes,
}

/// Why an answer to `/response` or `/error` was refused, with the status the
/// Runtime API would use.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reject {
    /// 400 `InvalidRequestID`: never dispatched by this emulator.
    UnknownRequest,
    /// 403 `InvalidStateTransition`: already answered.
    AlreadyAnswered,
    /// 410: the invocation timed out, or the echoed invocation id is not the
    /// one dispatched (a stale answer); `lambda_runtime` logs it and goes on.
    Stale,
}

/// An answer from the runtime, as the server read it.
pub(crate) struct Answer {
    pub(crate) outcome: Outcome,
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) echoed_invocation_id: Option<String>,
    pub(crate) received_at: Instant,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Pending>,
    in_flight: HashMap<String, Active>,
    history: Vec<Invocation>,
    init_errors: Vec<FunctionError>,
    /// An init error no queued invocation was there to receive: the next
    /// invocation gets it, as Lambda fails the invocation that would have
    /// run in the environment whose init failed.
    unclaimed_init_error: Option<FunctionError>,
    first_poll: Option<Instant>,
    polls: u64,
    closed: bool,
}

/// What the HTTP handlers and the test handle share.
pub(crate) struct Shared {
    pub(crate) config: EmulatorConfig,
    state: Mutex<State>,
    /// Woken whenever something is queued (or on shutdown).
    pub(crate) queued: Notify,
    /// Woken on every `GET /next`.
    polled: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves only bookkeeping behind, which
        // is still the best account of what happened: keep using it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn record_poll(&self) {
        {
            let mut st = self.lock();
            st.polls += 1;
            st.first_poll.get_or_insert_with(Instant::now);
        }
        self.polled.notify_waiters();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Takes the oldest queued invocation and marks it in flight.
    pub(crate) fn dispatch(&self) -> Option<Dispatch> {
        let mut st = self.lock();
        let pending = st.queue.pop_front()?;
        let now = Instant::now();
        let deadline_ms = epoch_ms(SystemTime::now() + pending.timeout);
        let trace_id = pending
            .headers
            .trace_id
            .clone()
            .unwrap_or_else(new_trace_id);
        // The waiter may be gone (it stopped waiting); the invocation still
        // runs and lands in the history.
        let _ = pending.dispatched.send(now);
        let dispatch = Dispatch {
            request_id: pending.request_id.clone(),
            invocation_id: self
                .config
                .send_invocation_id
                .then(|| pending.invocation_id.clone()),
            deadline_ms,
            function_arn: self.config.function.arn(),
            trace_id: trace_id.clone(),
            headers: pending.headers,
            body: pending.body,
        };
        st.in_flight.insert(
            pending.request_id.clone(),
            Active {
                request_id: pending.request_id,
                invocation_id: pending.invocation_id,
                event: pending.event,
                deadline_ms,
                trace_id,
                queued_at: pending.queued_at,
                dispatched_at: now,
                done: pending.done,
            },
        );
        Some(dispatch)
    }

    /// Records the runtime's answer to a dispatched invocation.
    pub(crate) fn complete(&self, request_id: &str, answer: Answer) -> Result<(), Reject> {
        let mut st = self.lock();
        let Some(active) = st.in_flight.get(request_id) else {
            return Err(
                match st.history.iter().find(|i| i.request_id == request_id) {
                    Some(i) if i.outcome == Outcome::TimedOut => Reject::Stale,
                    Some(_) => Reject::AlreadyAnswered,
                    None => Reject::UnknownRequest,
                },
            );
        };
        if answer
            .echoed_invocation_id
            .as_deref()
            .is_some_and(|echoed| echoed != active.invocation_id)
        {
            return Err(Reject::Stale);
        }
        let Some(active) = st.in_flight.remove(request_id) else {
            return Err(Reject::UnknownRequest);
        };
        let record = Invocation {
            request_id: active.request_id,
            invocation_id: active.invocation_id,
            event: active.event,
            deadline_ms: active.deadline_ms,
            function_arn: self.config.function.arn(),
            trace_id: active.trace_id,
            outcome: answer.outcome,
            queued_for: active.dispatched_at - active.queued_at,
            duration: answer
                .received_at
                .saturating_duration_since(active.dispatched_at),
            answer_headers: answer.headers,
            queued_at: active.queued_at,
            finished_at: answer.received_at,
        };
        st.history.push(record.clone());
        let _ = active.done.send(record);
        Ok(())
    }

    /// Records `POST /init/error`: every queued invocation fails with it (or
    /// the next one does, when none is queued).
    pub(crate) fn init_error(&self, error: FunctionError) {
        let mut st = self.lock();
        st.init_errors.push(error.clone());
        if st.queue.is_empty() {
            st.unclaimed_init_error = Some(error);
            return;
        }
        let now = Instant::now();
        let arn = self.config.function.arn();
        while let Some(p) = st.queue.pop_front() {
            let record = never_dispatched(
                p.request_id,
                p.invocation_id,
                p.event,
                &arn,
                p.queued_at,
                now,
                Outcome::InitError(error.clone()),
            );
            st.history.push(record.clone());
            // Dropping `p.dispatched` unblocks the waiter, which then reads `done`.
            let _ = p.done.send(record);
        }
    }

    /// Marks an in-flight invocation timed out; false if it was answered first.
    fn time_out(&self, request_id: &str) -> bool {
        let mut st = self.lock();
        let Some(active) = st.in_flight.remove(request_id) else {
            return false;
        };
        let now = Instant::now();
        st.history.push(Invocation {
            request_id: active.request_id,
            invocation_id: active.invocation_id,
            event: active.event,
            deadline_ms: active.deadline_ms,
            function_arn: self.config.function.arn(),
            trace_id: active.trace_id,
            outcome: Outcome::TimedOut,
            queued_for: active.dispatched_at - active.queued_at,
            duration: now - active.dispatched_at,
            answer_headers: BTreeMap::new(),
            queued_at: active.queued_at,
            finished_at: now,
        });
        true
    }

    /// Removes a still-queued invocation; false if it was already dispatched.
    fn withdraw(&self, request_id: &str) -> bool {
        let mut st = self.lock();
        let before = st.queue.len();
        st.queue.retain(|p| p.request_id != request_id);
        st.queue.len() != before
    }

    /// Queues an invocation and waits for its outcome; see
    /// [`RuntimeEmulator::invoke`] for the timeout rules.
    pub(crate) async fn invoke(&self, request: InvokeRequest) -> Result<Invocation> {
        let shared = self;
        let body = Bytes::from(serde_json::to_vec(&request.event).map_err(Error::Event)?);
        let headers = ExtraHeaders {
            client_context: request
                .client_context
                .as_ref()
                .map(|v| json_header(v, "Lambda-Runtime-Client-Context"))
                .transpose()?,
            cognito_identity: request
                .cognito_identity
                .as_ref()
                .map(|v| json_header(v, "Lambda-Runtime-Cognito-Identity"))
                .transpose()?,
            tenant_id: request
                .tenant_id
                .as_deref()
                .map(|t| {
                    HeaderValue::from_str(t).map_err(|_| Error::InvalidHeader {
                        header: "Lambda-Runtime-Aws-Tenant-Id",
                    })
                })
                .transpose()?,
            trace_id: request.trace_id,
        };
        let request_id = uuid::Uuid::new_v4().to_string();
        let invocation_id = uuid::Uuid::new_v4().to_string();
        let timeout = request.timeout;
        let (dispatched_tx, mut dispatched_rx) = oneshot::channel();
        let (done_tx, mut done_rx) = oneshot::channel();
        {
            let mut st = shared.lock();
            if st.closed {
                return Err(Error::ShutDown);
            }
            let now = Instant::now();
            if let Some(error) = st.unclaimed_init_error.take() {
                let arn = shared.config.function.arn();
                let record = never_dispatched(
                    request_id,
                    invocation_id,
                    request.event,
                    &arn,
                    now,
                    now,
                    Outcome::InitError(error),
                );
                st.history.push(record.clone());
                return Ok(record);
            }
            st.queue.push_back(Pending {
                request_id: request_id.clone(),
                invocation_id,
                event: request.event,
                body,
                headers,
                timeout,
                queued_at: now,
                dispatched: dispatched_tx,
                done: done_tx,
            });
        }
        shared.queued.notify_waiters();
        let _withdraw = Withdraw {
            shared,
            request_id: request_id.clone(),
        };

        let dispatched_at = match tokio::time::timeout(timeout, &mut dispatched_rx).await {
            Ok(Ok(at)) => at,
            // Resolved without being dispatched: an init error, or shutdown.
            Ok(Err(_)) => return done_rx.await.map_err(|_| Error::ShutDown),
            Err(_) if shared.withdraw(&request_id) => {
                return Err(Error::NotPickedUp {
                    request_id,
                    waited: timeout,
                });
            }
            // Taken between the timer firing and the withdrawal.
            Err(_) => match dispatched_rx.await {
                Ok(at) => at,
                Err(_) => return done_rx.await.map_err(|_| Error::ShutDown),
            },
        };

        let deadline = tokio::time::Instant::from_std(dispatched_at + timeout);
        match tokio::time::timeout_at(deadline, &mut done_rx).await {
            Ok(done) => done.map_err(|_| Error::ShutDown),
            Err(_) if shared.time_out(&request_id) => Err(Error::Timeout {
                request_id,
                timeout,
            }),
            // Answered between the deadline and the bookkeeping.
            Err(_) => done_rx.await.map_err(|_| Error::ShutDown),
        }
    }

    /// Fails everything pending: dropping the senders makes waiters see
    /// [`Error::ShutDown`].
    fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        st.queue.clear();
        st.in_flight.clear();
        drop(st);
        self.queued.notify_waiters();
    }
}

fn never_dispatched(
    request_id: String,
    invocation_id: String,
    event: Value,
    arn: &str,
    queued_at: Instant,
    now: Instant,
    outcome: Outcome,
) -> Invocation {
    Invocation {
        request_id,
        invocation_id,
        event,
        deadline_ms: 0,
        function_arn: arn.to_owned(),
        trace_id: String::new(),
        outcome,
        queued_for: now - queued_at,
        duration: Duration::ZERO,
        answer_headers: BTreeMap::new(),
        queued_at,
        finished_at: now,
    }
}

fn epoch_ms(t: SystemTime) -> u64 {
    let ms = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    u64::try_from(ms).unwrap_or(u64::MAX)
}

/// An X-Ray trace header in the shape Lambda sends:
/// `Root=1-<8 hex epoch seconds>-<24 hex>;Parent=<16 hex>;Sampled=0`.
fn new_trace_id() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let a = uuid::Uuid::new_v4().simple().to_string();
    let b = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "Root=1-{secs:08x}-{};Parent={};Sampled=0",
        &a[..24],
        &b[..16]
    )
}

fn json_header(value: &Value, header: &'static str) -> Result<HeaderValue> {
    HeaderValue::from_str(&value.to_string()).map_err(|_| Error::InvalidHeader { header })
}

/// The owner of the server: shuts it down when the last handle is dropped.
struct Inner {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    server: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.close();
        let _ = self.shutdown.send(true);
        if let Some(server) = self.server.lock().unwrap_or_else(|e| e.into_inner()).take() {
            server.abort();
        }
    }
}

/// A running Lambda Runtime API. Cheap to clone; the server stops with
/// [`shutdown`](Self::shutdown) or when the last clone is dropped.
#[derive(Clone)]
pub struct RuntimeEmulator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RuntimeEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeEmulator")
            .field("addr", &self.inner.addr)
            .field("function", &self.inner.shared.config.function.name)
            .finish()
    }
}

impl RuntimeEmulator {
    /// Starts an emulator on `127.0.0.1:<free port>` with the default function.
    pub async fn start() -> Result<Self> {
        Self::start_with(EmulatorConfig::default()).await
    }

    /// Starts an emulator with the given configuration.
    pub async fn start_with(config: EmulatorConfig) -> Result<Self> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
        let shared = Arc::new(Shared {
            config,
            state: Mutex::default(),
            queued: Notify::new(),
            polled: Notify::new(),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let server = tokio::spawn(crate::server::serve(listener, shared.clone(), shutdown_rx));
        Ok(Self {
            inner: Arc::new(Inner {
                shared,
                addr,
                shutdown,
                server: Mutex::new(Some(server)),
            }),
        })
    }

    /// The address the Runtime API listens on.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The `host:port` value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn runtime_api(&self) -> String {
        self.inner.addr.to_string()
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &EmulatorConfig {
        &self.inner.shared.config
    }

    /// Invokes the function with `event` and waits for its answer.
    ///
    /// `timeout` is the function timeout (the deadline header is the dispatch
    /// time plus `timeout`) and also how long to wait for a runtime to take
    /// the invocation. A response, a function error and an init error are all
    /// `Ok`: see [`Invocation::outcome`]. Dropping the returned future before
    /// a runtime took the invocation withdraws it from the queue.
    pub async fn invoke(&self, event: Value, timeout: Duration) -> Result<Invocation> {
        self.invoke_with(InvokeRequest::new(event, timeout)).await
    }

    /// [`invoke`](Self::invoke) with client context, identity, tenant or trace id.
    pub async fn invoke_with(&self, request: InvokeRequest) -> Result<Invocation> {
        self.inner.shared.invoke(request).await
    }

    /// Every finished invocation so far, oldest first (responses, errors, init
    /// errors and timeouts).
    pub fn invocations(&self) -> Vec<Invocation> {
        self.inner.shared.lock().history.clone()
    }

    /// Every `POST /init/error` received so far.
    pub fn init_errors(&self) -> Vec<FunctionError> {
        self.inner.shared.lock().init_errors.clone()
    }

    /// How many `GET /next` requests have arrived.
    pub fn polls(&self) -> u64 {
        self.inner.shared.lock().polls
    }

    /// When the first `GET /next` arrived: the end of the function's init.
    pub fn first_poll_at(&self) -> Option<Instant> {
        self.inner.shared.lock().first_poll
    }

    /// Waits until a runtime has polled `GET /next` at least once (that is,
    /// finished its init); false if none did within `timeout`.
    pub async fn wait_for_runtime(&self, timeout: Duration) -> bool {
        let shared = &self.inner.shared;
        let wait = async {
            loop {
                let polled = shared.polled.notified();
                tokio::pin!(polled);
                polled.as_mut().enable();
                if shared.lock().first_poll.is_some() {
                    return;
                }
                polled.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }

    /// Stops the server: open connections (long polls included) are dropped
    /// and pending invocations fail with [`Error::ShutDown`].
    pub async fn shutdown(&self) {
        self.inner.shared.close();
        let _ = self.inner.shutdown.send(true);
        let server = self
            .inner
            .server
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(server) = server {
            let _ = server.await;
        }
    }
}

/// Withdraws a still-queued invocation when its waiter goes away, so that an
/// abandoned event is not handed to the next process that polls.
struct Withdraw<'a> {
    shared: &'a Shared,
    request_id: String,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        self.shared.withdraw(&self.request_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_id_has_the_xray_shape() {
        let t = new_trace_id();
        let (root, rest) = t.split_once(";Parent=").unwrap();
        assert!(root.starts_with("Root=1-"));
        assert_eq!(root.len(), "Root=1-".len() + 8 + 1 + 24);
        assert!(rest.ends_with(";Sampled=0"));
    }

    #[test]
    fn arn_names_the_function() {
        assert_eq!(
            FunctionConfig::default().arn(),
            "arn:aws:lambda:us-east-1:000000000000:function:spark-gateway-test"
        );
    }
}
