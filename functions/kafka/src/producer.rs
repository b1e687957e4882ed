//! The producer, served on the Tokio runtime that made it. rdkafka's `FutureProducer` hands every
//! delivery report to a polling thread of its own, which then wakes the task waiting for it: a send
//! waited for three thread wake-ups (ours to librdkafka's broker thread, the broker thread to the
//! polling thread, the polling thread back to ours), and on a small VM each wake-up of an idle vCPU
//! costs about as much as the broker's answer. Here librdkafka calls back when its report queue turns
//! non-empty, that wakes a task on our runtime, and the task serves the reports itself: the waiting
//! send completes on the thread that serves them, and the polling thread does not exist.

#![allow(unsafe_code)]

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::bindings as rdsys;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, ToBytes};
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, FutureRecord, Producer, ProducerContext,
};
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::{Notify, oneshot};

use crate::{KafkaContext, KafkaSetupError};

/// Where a record was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// The partition.
    pub partition: i32,
    /// Its offset there.
    pub offset: i64,
}

type DeliveryOutcome = Result<Delivered, KafkaError>;

impl ProducerContext for KafkaContext {
    type DeliveryOpaque = Box<oneshot::Sender<DeliveryOutcome>>;

    fn delivery(&self, result: &DeliveryResult<'_>, waiting: Self::DeliveryOpaque) {
        let outcome = match result {
            Ok(message) => Ok(Delivered {
                partition: message.partition(),
                offset: message.offset(),
            }),
            Err((error, _)) => Err(error.clone()),
        };
        // The send that waited for it may have been dropped (its caller gave up); nobody to tell.
        let _ = waiting.send(outcome);
    }
}

/// librdkafka's main queue, where its delivery reports, errors and log lines arrive, with our wake-up
/// call enabled on it.
struct ReportQueue(*mut rdsys::rd_kafka_queue_t);

// SAFETY: librdkafka's queue handles may be used from any thread; ours is only read for its length
// and, when dropped, has the callback disabled and the handle released.
unsafe impl Send for ReportQueue {}
// SAFETY: as above: every call made on it is thread-safe in librdkafka.
unsafe impl Sync for ReportQueue {}

impl ReportQueue {
    fn len(&self) -> usize {
        // SAFETY: the handle is valid until `drop`.
        unsafe { rdsys::rd_kafka_queue_length(self.0) }
    }
}

impl Drop for ReportQueue {
    fn drop(&mut self) {
        // SAFETY: the handle is ours; once the callback is disabled (under the queue's lock, so no call
        // is in progress after this returns) nothing refers to the `Notify` it was given.
        unsafe {
            rdsys::rd_kafka_queue_cb_event_enable(self.0, None, std::ptr::null_mut());
            rdsys::rd_kafka_queue_destroy(self.0);
        }
    }
}

/// Called by librdkafka (from its own threads, under the queue's lock) when the report queue turns
/// non-empty: only wakes the serving task.
unsafe extern "C" fn on_reports(_: *mut rdsys::rd_kafka_t, wake: *mut c_void) {
    // SAFETY: `wake` is the `Notify` of a live `Shared`, which disables this callback before it lets
    // go of it.
    let wake = unsafe { &*(wake as *const Notify) };
    wake.notify_one();
}

/// Fields drop in order: the callback is disabled before the producer is destroyed (its last
/// reports are served by its own flush) and before the `Notify` it points to is freed.
struct Shared {
    queue: ReportQueue,
    producer: BaseProducer<KafkaContext>,
    wake: Arc<Notify>,
    serving: Arc<Serving>,
}

/// Whether the serving task still runs; it stops without the producer going when its runtime shuts
/// down, and then the senders serve the reports themselves.
#[derive(Default)]
struct Serving {
    ended: AtomicBool,
    /// Tells the sends waiting meanwhile.
    end: Notify,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The serving task holds only a weak reference: let it see that the producer is gone.
        self.wake.notify_one();
    }
}

/// Reports served per turn before the task yields, so a flood of them cannot hold the runtime.
const REPORTS_PER_TURN: usize = 256;

/// Says the serving task ended, however it ends (a runtime that shuts down drops it).
struct ServingGuard(Arc<Serving>);

impl Drop for ServingGuard {
    fn drop(&mut self) {
        self.0.ended.store(true, Ordering::Release);
        self.0.end.notify_waiters();
    }
}

/// `_guard` is an argument, not made inside: a task that never ran drops it too.
async fn serve(shared: Weak<Shared>, wake: Arc<Notify>, _guard: ServingGuard) {
    loop {
        wake.notified().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        // The callback fires only when the queue turns non-empty: serve it until it is empty.
        let mut served = 0;
        while shared.queue.len() > 0 && served < REPORTS_PER_TURN {
            shared.producer.poll(Duration::ZERO);
            served += 1;
        }
        if shared.queue.len() > 0 {
            wake.notify_one();
            drop(shared);
            tokio::task::yield_now().await;
        }
    }
}

/// The delivery producer: cheap to clone, one librdkafka client for all clones; its reports are
/// served until the last clone is dropped.
#[derive(Clone)]
pub(crate) struct ServedProducer {
    shared: Arc<Shared>,
}

/// How often a send serves the reports itself once the serving task is gone.
const UNSERVED_POLL: Duration = Duration::from_millis(5);

/// How long a send waits between tries while librdkafka's local queue is full.
const QUEUE_FULL_PAUSE: Duration = Duration::from_millis(10);

impl ServedProducer {
    /// Creates the producer and starts serving it on the current Tokio runtime.
    pub(crate) fn create(
        config: &ClientConfig,
        context: KafkaContext,
    ) -> Result<Self, KafkaSetupError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| KafkaSetupError::NoRuntime)?;
        let producer =
            BaseProducer::from_config_and_context(config, context).map_err(|source| {
                KafkaSetupError::Client {
                    role: "producer",
                    source,
                }
            })?;
        let wake = Arc::new(Notify::new());
        // SAFETY: the client is valid; the queue handle we get is our own reference to its main queue,
        // released by `ReportQueue::drop`, and the `Notify` outlives the callback (see `Shared`).
        let queue = unsafe {
            let queue = rdsys::rd_kafka_queue_get_main(producer.client().native_ptr());
            rdsys::rd_kafka_queue_cb_event_enable(
                queue,
                Some(on_reports),
                Arc::as_ptr(&wake) as *mut c_void,
            );
            ReportQueue(queue)
        };
        let serving = Arc::new(Serving::default());
        let shared = Arc::new(Shared {
            queue,
            producer,
            wake: Arc::clone(&wake),
            serving: Arc::clone(&serving),
        });
        // What arrived before the callback was enabled (log lines of the start) is served at once.
        wake.notify_one();
        runtime.spawn(serve(Arc::downgrade(&shared), wake, ServingGuard(serving)));
        Ok(Self { shared })
    }

    /// The librdkafka client (metadata, flush).
    pub(crate) fn producer(&self) -> &BaseProducer<KafkaContext> {
        &self.shared.producer
    }

    /// Sends `record` and waits for its delivery report; while the local queue is full it tries
    /// again until `queue_timeout` has passed.
    pub(crate) async fn send<K, P>(
        &self,
        record: FutureRecord<'_, K, P>,
        queue_timeout: Duration,
    ) -> Result<Delivered, KafkaError>
    where
        K: ToBytes + ?Sized,
        P: ToBytes + ?Sized,
    {
        let started = Instant::now();
        let (report, delivered) = oneshot::channel();
        let mut record = BaseRecord {
            topic: record.topic,
            partition: record.partition,
            payload: record.payload,
            key: record.key,
            timestamp: record.timestamp,
            headers: record.headers,
            delivery_opaque: Box::new(report),
        };
        loop {
            match self.shared.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if started.elapsed() < queue_timeout =>
                {
                    record = back;
                    tokio::time::sleep(QUEUE_FULL_PAUSE).await;
                }
                Err((error, _)) => return Err(error),
            }
        }
        // The sender is dropped unanswered only when the producer is destroyed with the record in it.
        let answered =
            |outcome: Result<DeliveryOutcome, _>| outcome.unwrap_or(Err(KafkaError::Canceled));
        let mut delivered = std::pin::pin!(delivered);
        let serving = &self.shared.serving;
        // Registered before the flag is read, so an end between the two is not missed.
        let mut ended = std::pin::pin!(serving.end.notified());
        ended.as_mut().enable();
        if !serving.ended.load(Ordering::Acquire) {
            tokio::select! {
                outcome = &mut delivered => return answered(outcome),
                () = ended => {}
            }
        }
        // A producer that outlived the runtime it was made on is served by its senders.
        loop {
            tokio::select! {
                outcome = &mut delivered => return answered(outcome),
                () = tokio::time::sleep(UNSERVED_POLL) => self.shared.producer.poll(Duration::ZERO),
            }
        }
    }
}
