//! The worker pool: at most `workers` renders at once on blocking threads, a bounded queue, a
//! queue and a transform timeout, and load shedding under memory pressure.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::TransformError;

/// Counters the worker pool keeps (read by metrics and `/readyz`).
#[derive(Debug, Default)]
pub struct PoolStats {
    pub waiting: AtomicUsize,
    pub in_flight: AtomicUsize,
    pub transforms: AtomicUsize,
    /// Requests admitted ([`Workers::admit`]) and not finished: fetching, waiting or running.
    pub admitted: AtomicUsize,
}

/// A place among the `workers + queue` requests the pool takes at once, held from before the
/// source is fetched until the transform ends, so a request the pool would refuse is refused
/// before it downloads anything.
pub struct Admission {
    stats: Arc<PoolStats>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.stats.admitted.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The worker pool: at most `workers` transforms at once, at most `queue` waiting.
#[derive(Clone)]
pub struct Workers {
    sem: Arc<Semaphore>,
    pub workers: usize,
    queue: usize,
    queue_timeout: Duration,
    transform_timeout: Duration,
    /// Shed new transforms while the process's resident memory is above this (0 = off).
    memory_limit: u64,
    pub stats: Arc<PoolStats>,
}

static TRIM_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Resident set size of this process in bytes (Linux; 0 elsewhere).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    pages * 4096
}

/// Why a job was not run.
#[derive(Debug)]
pub enum Rejected {
    QueueFull,
    MemoryPressure,
    QueueTimeout,
    Failed(TransformError),
}

impl Rejected {
    /// The `imago_shed_total` reason, when the job was shed rather than failed.
    pub fn shed_reason(&self) -> Option<&'static str> {
        match self {
            Rejected::QueueFull => Some("queue_full"),
            Rejected::MemoryPressure => Some("memory"),
            Rejected::QueueTimeout => Some("queue_timeout"),
            Rejected::Failed(_) => None,
        }
    }
}

impl Workers {
    pub fn new(workers: usize, queue: usize, queue_timeout: Duration, transform_timeout: Duration) -> Self {
        Workers {
            sem: Arc::new(Semaphore::new(workers)),
            workers,
            queue,
            queue_timeout,
            transform_timeout,
            memory_limit: 0,
            stats: Arc::new(PoolStats::default()),
        }
    }

    /// Sheds new transforms while RSS is above `bytes` (0 = off).
    pub fn with_memory_limit(mut self, bytes: u64) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// How long a job may run before its caller gets [`TransformError::Timeout`]; jobs that
    /// watch this deadline themselves (`render_until`) stop then and free their worker.
    pub fn transform_timeout(&self) -> Duration {
        self.transform_timeout
    }

    /// True when every worker is busy and the queue is at least half full.
    pub fn saturated(&self) -> bool {
        self.sem.available_permits() == 0 && self.stats.waiting.load(Ordering::Relaxed) * 2 >= self.queue
    }

    /// Admits a request before its source is fetched: refused under memory pressure, and when
    /// `workers + queue` requests are already admitted (fetching, waiting or running).
    pub fn admit(&self) -> Result<Admission, Rejected> {
        if self.memory_limit > 0 && rss_bytes() > self.memory_limit {
            return Err(Rejected::MemoryPressure);
        }
        let before = self.stats.admitted.fetch_add(1, Ordering::SeqCst);
        let admission = Admission { stats: self.stats.clone() };
        if before >= self.workers + self.queue {
            return Err(Rejected::QueueFull);
        }
        Ok(admission)
    }

    /// Admits and runs `job` (a job with nothing to fetch first).
    pub async fn run<T, F>(&self, job: F) -> Result<T, Rejected>
    where
        F: FnOnce() -> Result<T, TransformError> + Send + 'static,
        T: Send + 'static,
    {
        let admission = self.admit()?;
        self.run_admitted(admission, job).await
    }

    /// Runs an admitted `job` on a blocking thread once a worker is free.
    pub async fn run_admitted<T, F>(&self, admission: Admission, job: F) -> Result<T, Rejected>
    where
        F: FnOnce() -> Result<T, TransformError> + Send + 'static,
        T: Send + 'static,
    {
        let _admission = admission;
        // Memory may have grown while the source was fetched.
        if self.memory_limit > 0 && rss_bytes() > self.memory_limit {
            return Err(Rejected::MemoryPressure);
        }
        let permit = match self.sem.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                self.stats.waiting.fetch_add(1, Ordering::SeqCst);
                let acquired = tokio::time::timeout(self.queue_timeout, self.sem.clone().acquire_owned()).await;
                self.stats.waiting.fetch_sub(1, Ordering::SeqCst);
                match acquired {
                    Ok(Ok(p)) => p,
                    Ok(Err(_)) => return Err(Rejected::Failed(TransformError::Internal("worker pool closed".into()))),
                    Err(_) => return Err(Rejected::QueueTimeout),
                }
            }
        };
        let stats = self.stats.clone();
        stats.in_flight.fetch_add(1, Ordering::SeqCst);
        stats.transforms.fetch_add(1, Ordering::SeqCst);
        let started = Instant::now();
        let handle = tokio::task::spawn_blocking(move || {
            let r = job();
            // Give freed decode buffers back to the OS every few jobs: without this, glibc keeps
            // the peak of every arena mapped and RSS creeps up over a long mixed run (see
            // benches/soak.rs); trimming after every job costs a few percent of CPU.
            #[cfg(target_os = "linux")]
            if TRIM_COUNTER.fetch_add(1, Ordering::Relaxed) % 8 == 7 {
                // SAFETY: malloc_trim only releases free memory back to the OS.
                unsafe {
                    libc::malloc_trim(0);
                }
            }
            drop(permit);
            r
        });
        // The permit is released by the blocking thread itself, so a timed-out job holds its
        // worker until it returns (the pool never runs more than `workers` jobs); renders watch
        // the same deadline and stop then (`render_until`), so that is soon after the timeout.
        let res = tokio::time::timeout(self.transform_timeout, handle).await;
        stats.in_flight.fetch_sub(1, Ordering::SeqCst);
        match res {
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(e))) => Err(Rejected::Failed(e)),
            Ok(Err(join)) => Err(Rejected::Failed(TransformError::Internal(format!("worker panicked: {join}")))),
            Err(_) => Err(Rejected::Failed(TransformError::Timeout(started.elapsed()))),
        }
    }
}
