//! The event buffer between the request path and the writer task.
//!
//! Cost matters here: an event is recorded for every image request, including cache hits that
//! take a few microseconds of CPU. The request path therefore does no formatting at all: it
//! moves a small [`Record`](super::record::Record) (numbers, static strings and one `Arc` to the
//! per-URL [`Subject`](super::record::Subject) that the request memo already holds) into a
//! buffer owned by its own thread (a [`Shard`]: its lock is only ever contended by the writer
//! swapping it out). The writer ([`super::writer`]) takes every shard's buffer in O(1) per shard
//! and hands the emptied buffers back, so steady state allocates nothing per event.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use prometheus::IntCounter;
use tokio::sync::{mpsc, Notify};

use super::record::{Ctl, Item, Tally};

/// One thread's buffer.
#[derive(Default)]
pub(super) struct Shard {
    pub(super) items: Mutex<ShardItems>,
}

#[derive(Default)]
pub(super) struct ShardItems {
    pub(super) items: Vec<Item>,
    /// Refused requests counted since the last take (a few entries: per minute and code).
    pub(super) refused: Vec<Tally>,
    /// Room this shard has reserved in [`Shared::reserved`] and not used yet.
    budget: usize,
}

/// What the request path and the writer share.
pub struct Shared {
    /// Tells this buffer's shards apart in a thread's list (several servers may share a process).
    id: usize,
    pub(super) shards: Mutex<Vec<Arc<Shard>>>,
    /// Items buffered in all shards plus the shards' unused budgets (at most `cap`). Shards
    /// reserve room in blocks of [`Shared::block`] events, so this shared counter is written
    /// once per block, not once per request.
    pub(super) reserved: AtomicUsize,
    block: usize,
    closed: AtomicBool,
    cap: usize,
    flush_events: usize,
    pub(super) wake: Notify,
    pub ctl: mpsc::UnboundedSender<Ctl>,
    /// Interned once per process.
    pub instance: &'static str,
    pub dropped: IntCounter,
}

/// Refused-request counters one shard holds between takes (one per minute, method, status and
/// code: a handful in practice); beyond it a refused request is dropped and counted.
const MAX_TALLIES: usize = 256;

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

enum Pushed {
    Kept,
    /// Kept, and the buffer reached `flush_events`: wake the writer.
    KeptAndDue,
    Dropped,
}

thread_local! {
    /// This thread's shard of each live [`Shared`], by id.
    static SHARDS: RefCell<Vec<(usize, Arc<Shard>)>> = const { RefCell::new(Vec::new()) };
}

impl Shared {
    pub fn new(
        cap: usize,
        flush_events: usize,
        instance: &'static str,
        dropped: IntCounter,
    ) -> (Arc<Shared>, mpsc::UnboundedReceiver<Ctl>) {
        let (ctl, rx) = mpsc::unbounded_channel();
        let shared = Shared {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            shards: Mutex::new(Vec::new()),
            reserved: AtomicUsize::new(0),
            // Exact (one at a time) for small limits, as tests and tiny deployments set them.
            block: (cap.min(flush_events) / 64).clamp(1, 64),
            closed: AtomicBool::new(false),
            cap,
            flush_events,
            wake: Notify::new(),
            ctl,
            instance,
            dropped,
        };
        (Arc::new(shared), rx)
    }

    /// Buffers an item in this thread's shard; drops and counts it when the buffer is full or
    /// closed. Never waits for the writer.
    pub fn push(&self, item: Item) {
        match self.push_local(item) {
            Pushed::Kept => {}
            Pushed::KeptAndDue => self.wake.notify_one(),
            Pushed::Dropped => self.dropped.inc(),
        }
    }

    /// Counts a refused request in this thread's shard (no room in the buffer is used: a flood
    /// of refused requests neither grows memory nor crowds out the events of served ones).
    pub fn count(&self, t: Tally) {
        let kept = self.in_shard(|shard| {
            if shard.refused.iter_mut().any(|c| c.merge(&t)) {
                return Pushed::Kept;
            }
            if shard.refused.len() >= MAX_TALLIES {
                return Pushed::Dropped;
            }
            shard.refused.push(t);
            Pushed::Kept
        });
        if matches!(kept, Pushed::Dropped) {
            self.dropped.inc();
        }
    }

    /// Reserves up to a block of room; whether the flush threshold was crossed by it.
    fn reserve(&self) -> Option<(usize, bool)> {
        let mut got = 0;
        let before = self
            .reserved
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| {
                got = self.block.min(self.cap.saturating_sub(r));
                (got > 0).then_some(r + got)
            })
            .ok()?;
        // Items not yet taken, counting reserved room (early by at most a block per shard).
        Some((got, before < self.flush_events && before + got >= self.flush_events))
    }

    fn push_local(&self, item: Item) -> Pushed {
        self.in_shard(|shard| {
            let mut due = false;
            if shard.budget == 0 {
                match self.reserve() {
                    Some((got, crossed)) => {
                        shard.budget = got;
                        due = crossed;
                    }
                    None => return Pushed::Dropped,
                }
            }
            shard.budget -= 1;
            shard.items.push(item);
            if due {
                Pushed::KeptAndDue
            } else {
                Pushed::Kept
            }
        })
    }

    /// Runs `f` on this thread's shard (made on first use), under its lock, unless the buffer is
    /// closed.
    fn in_shard(&self, f: impl FnOnce(&mut ShardItems) -> Pushed) -> Pushed {
        SHARDS.with(|list| {
            let Ok(mut list) = list.try_borrow_mut() else { return Pushed::Dropped };
            let i = match list.iter().position(|(id, _)| *id == self.id) {
                Some(i) => i,
                None => {
                    // Forget the shards of buffers that are gone (only this thread holds them).
                    list.retain(|(_, s)| Arc::strong_count(s) > 1);
                    let shard = Arc::new(Shard::default());
                    match self.shards.lock() {
                        Ok(mut all) => all.push(shard.clone()),
                        Err(_) => return Pushed::Dropped,
                    }
                    list.push((self.id, shard));
                    list.len() - 1
                }
            };
            let Ok(mut shard) = list[i].1.items.lock() else { return Pushed::Dropped };
            // Checked under the shard's lock: `take(close)` sets the flag before it takes the
            // shard, so an item is either taken by that last flush or refused here.
            if self.closed.load(Ordering::SeqCst) {
                return Pushed::Dropped;
            }
            f(&mut shard)
        })
    }

    /// Takes every shard's items (and, with `close`, refuses items from now on), swapping in
    /// the emptied buffers of `spare`.
    pub(super) fn take(&self, close: bool, spare: &mut Vec<Vec<Item>>) -> Vec<Vec<Item>> {
        if close {
            self.closed.store(true, Ordering::SeqCst);
        }
        let shards = match self.shards.lock() {
            Ok(all) => all.clone(),
            Err(_) => return Vec::new(),
        };
        let mut out = Vec::new();
        for s in shards {
            let Ok(mut shard) = s.items.lock() else { continue };
            if close {
                // A closed buffer takes nothing more: give the unused room back too.
                self.reserved.fetch_sub(std::mem::take(&mut shard.budget), Ordering::Relaxed);
            }
            if shard.items.is_empty() && shard.refused.is_empty() {
                continue;
            }
            let mut full = spare.pop().unwrap_or_default();
            std::mem::swap(&mut shard.items, &mut full);
            let taken = full.len();
            full.extend(shard.refused.drain(..).map(Item::Refused));
            drop(shard);
            self.reserved.fetch_sub(taken, Ordering::Relaxed);
            out.push(full);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::record::fixtures::{full, subject};
    use crate::analytics::record::{Record, SubjectOf};
    use std::time::Duration;

    #[test]
    fn every_thread_buffers_apart_and_the_writer_takes_all() {
        let dropped = IntCounter::new("d", "d").unwrap();
        let (s, _rx) = Shared::new(100_000, 1_000_000, "h", dropped.clone());
        let (other, _rx2) = Shared::new(10, 1_000_000, "h", dropped.clone());
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for i in 0..1_000 {
                        s.push(Item::Request(full()));
                        if i % 100 == 0 {
                            other.push(Item::Event(Box::default()));
                        }
                    }
                });
            }
            // The writer takes while the threads push: nothing is lost or taken twice.
            let mut got = 0;
            for _ in 0..50 {
                got += s.take(false, &mut Vec::new()).iter().map(Vec::len).sum::<usize>();
                std::thread::yield_now();
            }
            std::hint::black_box(got);
        });
        assert_eq!(dropped.get(), 30, "the second buffer holds 10 of 40");
        assert_eq!(s.shards.lock().unwrap().len(), 4, "one shard per thread");
        assert_eq!(other.take(true, &mut Vec::new()).iter().map(Vec::len).sum::<usize>(), 10);
    }

    #[test]
    fn items_taken_concurrently_are_counted_once() {
        let dropped = IntCounter::new("d", "d").unwrap();
        let (s, _rx) = Shared::new(1_000_000, 1_000_000, "h", dropped.clone());
        let total = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..3 {
                scope.spawn(|| {
                    for _ in 0..5_000 {
                        s.push(Item::Event(Box::default()));
                    }
                });
            }
            scope.spawn(|| {
                for _ in 0..200 {
                    let n: usize = s.take(false, &mut Vec::new()).iter().map(Vec::len).sum();
                    total.fetch_add(n, Ordering::Relaxed);
                }
            });
        });
        let rest: usize = s.take(true, &mut Vec::new()).iter().map(Vec::len).sum();
        assert_eq!(total.load(Ordering::Relaxed) + rest, 15_000);
        assert_eq!((dropped.get(), s.reserved.load(Ordering::Relaxed)), (0, 0));
    }

    #[test]
    fn refused_requests_are_counted_without_room_in_the_buffer() {
        use crate::analytics::record::Tally;
        let dropped = IntCounter::new("d", "d").unwrap();
        let (s, _rx) = Shared::new(1, 100, "h", dropped.clone());
        s.push(Item::Request(full()));
        let at = std::time::UNIX_EPOCH + Duration::from_secs(120);
        let t = Tally::one(at, &actix_web::http::Method::GET, 403, Some("invalid-signature"));
        for _ in 0..1000 {
            s.count(Tally { bytes: 10, latency_ms: 2.0, ..t });
        }
        s.count(Tally { status: 400, error: Some("invalid-url"), ..t });
        // A full buffer (cap 1) still counts; distinct keys beyond MAX_TALLIES are dropped.
        for m in 0..300 {
            s.count(Tally { minute: 1000 + m, ..t });
        }
        assert_eq!(dropped.get(), 300 - (MAX_TALLIES as u64 - 2));
        let taken: Vec<Item> = s.take(false, &mut Vec::new()).into_iter().flatten().collect();
        assert_eq!(taken.len(), 1 + MAX_TALLIES);
        assert_eq!(s.reserved.load(Ordering::Relaxed), 0, "counts use no room");
        let Item::Refused(first) = &taken[1] else { panic!("a count") };
        assert_eq!((first.minute, first.method, first.requests, first.bytes), (2, "GET", 1000, 10_000));
        assert_eq!(first.latency_ms, 2000.0);
        assert!(s.take(false, &mut Vec::new()).is_empty(), "taken once");
        s.take(true, &mut Vec::new());
        s.count(t);
        assert_eq!(dropped.get(), 300 - (MAX_TALLIES as u64 - 2) + 1, "closed");
    }

    /// `cargo test --release --lib analytics::buffer::tests::push_cost -- --ignored --nocapture`
    #[test]
    #[ignore = "a measurement, not a check"]
    fn push_cost() {
        let n = 1_000_000;
        let dropped = IntCounter::new("d", "d").unwrap();
        let (s, _rx) = Shared::new(usize::MAX, usize::MAX, "h", dropped);
        let subject: Arc<dyn SubjectOf> = subject();
        let stop = AtomicBool::new(false);
        println!("Item is {} bytes", std::mem::size_of::<Item>());
        std::thread::scope(|scope| {
            let mut workers = Vec::new();
            for _ in 0..2 {
                let (s, subject) = (&s, subject.clone());
                workers.push(scope.spawn(move || {
                    let t = std::time::Instant::now();
                    for _ in 0..n {
                        s.push(Item::Request(Record {
                            at: std::time::SystemTime::now(),
                            method: actix_web::http::Method::GET,
                            request_id: Some(crate::telemetry::RequestId::Made(ulid::Ulid(7))),
                            subject: Some(subject.clone()),
                            out: None,
                            timings: None,
                            status: 200,
                            error: None,
                            bytes: 1000,
                            cache: Some("hit"),
                            latency_ms: 0.5,
                            referrer_host: None,
                        }));
                    }
                    t.elapsed().as_secs_f64() * 1e9 / n as f64
                }));
            }
            scope.spawn(|| {
                let mut spare = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(20));
                    for mut b in s.take(false, &mut spare) {
                        b.clear();
                        spare.push(b);
                    }
                }
            });
            let per: Vec<f64> = workers.into_iter().map(|w| w.join().unwrap()).collect();
            stop.store(true, Ordering::Relaxed);
            println!("push: {per:.0?} ns per event (threads at once, a writer taking every 20 ms)");
        });
    }
}
