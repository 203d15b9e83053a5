//! Reads shared by every member of a release: one process, one answer for
//! all of them.
//!
//! A [`SharedReads`] keeps the last answer for every key any member has asked
//! about. A read of keys that answer covers, taken within `fresh` of it, is
//! served from it; any other read refreshes *every* key at once, in as few
//! calls as the API allows (the caller's `fetch` batches: 100 alarm names, 20
//! listener or rule ARNs a call). So a release's reads of one kind cost at
//! most `keys / batch` calls per `fresh`, however many services it has, and
//! an answer is at most `fresh` old.
//!
//! Only kinds where that is never more than the members' own reads are
//! shared: alarms (read every poll by each member) and listeners (every 10 s
//! in a steady bake: `n / 10` calls a second alone, at most `n / 20` shared).
//! ECS services are not: three names a member, ten a call, is `0.3 n` calls
//! per refresh, more than the `n / 10` a second the members make alone, and
//! with one cluster per service no batching at all. Sharing them needs
//! freshness per key and batches filled only around the keys asked for. A member that has just written a resource calls [`SharedReads::forget`]
//! for it: its next read (the read-back of a weight change above all) reads
//! that resource again, alone, never the answer from before the write, and
//! without waiting for a refresh of every member's keys under way.
//!
//! One refresh at a time: members that ask while one is under way wait for
//! it and take its answer if it covers them, however long it took.
//!
//! A refresh that fails is an answer too: the members queued behind it, and
//! those that ask within its window, take its error instead of trying again
//! (the driver reads again on its own cadence). A second failure in a row
//! doubles the window ([`MAX_BACKOFF`]). Without this, a throttled refresh
//! was tried again at once by the next member in line, every one of them
//! urgent and unpaced: on 100 services a 500 ms alarm answer met 82,080
//! `DescribeAlarms` throttles (docs/BENCHMARKS.md). So a kind's refreshes,
//! failed or not, never outpace one per window.
//!
//! A window is `fresh`, or longer when the keys need many calls: with
//! [`SharedReads::calls_at_most`], a refresh of `n` calls serves for at least
//! `n / rate` seconds, so that a release with many alarms stays under its
//! share of the bucket however many names it reads.
//!
//! A refresh that finds a key's value changed says so ([`SharedReads::changed_since`]):
//! the members that read that key need not wait for their next poll to see
//! it. An alarm that one member's refresh finds in ALARM wakes the member it
//! belongs to at once, so that member's detection is bounded by `fresh`, not
//! by `fresh` plus its own poll.

use crate::model::GateReading;
use crate::ports::PortError;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// The most a failed refresh's window is stretched (doubling per failure).
/// Twice at most: a member's own retries of a failed read span at least
/// 3.9 s (`driver::Retry`: six attempts, equal jitter from 250 ms), so a
/// window of 2 s (listeners; 1 s for alarms) always leaves them a fresh try.
pub const MAX_BACKOFF: u32 = 2;

/// Every kind of read a release's members share.
#[derive(Debug)]
pub struct Shared {
    /// Alarm readings, by alarm name.
    pub alarms: SharedReads<String, GateReading>,
    /// A listener's default actions, by listener ARN.
    pub listeners: SharedReads<String, Vec<aws_sdk_elasticloadbalancingv2::types::Action>>,
    /// A listener rule's actions, by rule ARN.
    pub rules: SharedReads<String, Vec<aws_sdk_elasticloadbalancingv2::types::Action>>,
}

impl Shared {
    /// Shared reads whose answers serve for `fresh`; alarm readings for
    /// `alarms` (the gates are read every poll, so their answer's age is
    /// most of a release member's detection time), refreshed with at most
    /// [`ALARM_CALLS_PER_SEC`] `DescribeAlarms` calls a second.
    pub fn new(fresh: Duration, alarms: Duration) -> Shared {
        Shared {
            alarms: SharedReads::new(alarms)
                .calls_at_most(ALARM_CALLS_PER_SEC, crate::config::MAX_ALARMS),
            listeners: SharedReads::new(fresh),
            rules: SharedReads::new(fresh),
        }
    }
}

/// The shared alarm refreshes' share of CloudWatch's `DescribeAlarms`
/// bucket (9 a second, refilled 9 a second; `aws::pace::FAMILIES`): under
/// half, leaving the rest to the preflights and anyone else in the account.
pub const ALARM_CALLS_PER_SEC: f64 = 4.0;

/// Answers of one kind, shared by a release's members.
#[derive(Debug)]
pub struct SharedReads<K, V> {
    fresh: Duration,
    /// At most this many calls a second, of this many keys each.
    budget: Option<(f64, usize)>,
    /// Every key asked for, and those written since the last refresh. Apart
    /// from the answer, so that keys asked for during a refresh are in the next.
    asked: std::sync::Mutex<Asked<K>>,
    answer: tokio::sync::Mutex<Answer<K, V>>,
    /// Which refresh last changed each key's value.
    changes: tokio::sync::watch::Sender<Changes<K>>,
}

/// The refreshes so far, and the last one that changed each key.
#[derive(Debug)]
struct Changes<K> {
    serial: u64,
    changed: BTreeMap<K, u64>,
}

#[derive(Debug)]
struct Asked<K> {
    keys: BTreeSet<K>,
    stale: BTreeSet<K>,
}

#[derive(Debug)]
struct Answer<K, V> {
    /// The keys the last refresh read (a key it read and is not in `values`
    /// does not exist), and when that refresh began.
    read: BTreeSet<K>,
    at: Option<Instant>,
    values: BTreeMap<K, V>,
    /// How long the last refresh serves, failed or not.
    serves: Duration,
    /// The last refresh's error, when it failed, with when it began and
    /// how many refreshes in a row failed.
    failed: Option<(Instant, u32, PortError)>,
}

impl<K: Ord + Clone, V: Clone + PartialEq> SharedReads<K, V> {
    /// Answers that serve for `fresh` after the refresh that read them began.
    pub fn new(fresh: Duration) -> SharedReads<K, V> {
        SharedReads {
            fresh,
            budget: None,
            asked: std::sync::Mutex::new(Asked {
                keys: BTreeSet::new(),
                stale: BTreeSet::new(),
            }),
            answer: tokio::sync::Mutex::new(Answer {
                read: BTreeSet::new(),
                at: None,
                values: BTreeMap::new(),
                serves: fresh,
                failed: None,
            }),
            changes: tokio::sync::watch::Sender::new(Changes {
                serial: 0,
                changed: BTreeMap::new(),
            }),
        }
    }

    /// Refreshes of `n` keys make `ceil(n / batch)` calls: each serves for
    /// long enough that they average at most `per_sec` calls a second.
    pub fn calls_at_most(mut self, per_sec: f64, batch: usize) -> SharedReads<K, V> {
        self.budget = Some((per_sec, batch.max(1)));
        self
    }

    /// How long a refresh of `keys` keys serves.
    fn window(&self, keys: usize) -> Duration {
        match self.budget {
            Some((per_sec, batch)) => {
                let calls = keys.div_ceil(batch) as f64;
                self.fresh.max(Duration::from_secs_f64(calls / per_sec))
            }
            None => self.fresh,
        }
    }

    /// The refreshes made so far: pass it to [`SharedReads::changed_since`]
    /// after a read that began after it.
    pub fn serial(&self) -> u64 {
        self.changes.borrow().serial
    }

    /// Resolves once a refresh after the `serial`th has found any of `keys`
    /// changed (a value that differs, appeared or disappeared; the first
    /// read of a key is no change). Never, if none does.
    pub async fn changed_since(&self, keys: &[K], serial: u64) {
        let mut rx = self.changes.subscribe();
        loop {
            let hit = {
                let c = rx.borrow_and_update();
                keys.iter()
                    .any(|k| c.changed.get(k).is_some_and(|&at| at > serial))
            };
            if hit || rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Count a refresh of `read`, noting each key whose value changed.
    fn note(&self, read: &[K], before: &Answer<K, V>, after: &BTreeMap<K, V>) {
        // Waiting members are woken only by a refresh that changed something.
        self.changes.send_if_modified(|c| {
            c.serial += 1;
            let serial = c.serial;
            let mut any = false;
            for k in read {
                if before.read.contains(k) && before.values.get(k) != after.get(k) {
                    c.changed.insert(k.clone(), serial);
                    any = true;
                }
            }
            any
        });
    }

    /// The values of `keys` (a key with no value does not exist), from the
    /// last answer if it covers them, is fresh, and none of them was written
    /// since; otherwise from a refresh: `fetch` called once with every key
    /// asked so far, returning the values of those that exist.
    pub async fn read<F, Fut>(&self, keys: &[K], fetch: F) -> Result<BTreeMap<K, V>, PortError>
    where
        F: FnOnce(Vec<K>) -> Fut,
        Fut: Future<Output = Result<BTreeMap<K, V>, PortError>>,
    {
        let written = {
            let mut asked = self.lock_asked();
            asked.keys.extend(keys.iter().cloned());
            keys.iter().any(|k| asked.stale.contains(k))
        };
        if written {
            return self.read_back(keys, fetch).await;
        }
        let asked = Instant::now();
        let mut a = self.answer.lock().await;
        let covered = keys.iter().all(|k| a.read.contains(k));
        // A refresh that began after this read was asked is as new as this
        // read needs, however long it took: the members queued behind one
        // refresh all take its answer. (Judged by age alone, each of them
        // would refresh again in turn once a refresh outlasts `fresh`, as
        // under a saturated bucket one does: 110 members in single file.)
        let recent = a.at.is_some_and(|t| t >= asked || t.elapsed() <= a.serves);
        if covered && recent {
            return Ok(pick(&a.values, keys));
        }
        // The same for a failure: taken by those who asked before it ended
        // and, for its window, by everyone.
        if let Some((t, in_a_row, e)) = &a.failed {
            let backoff = a.serves * 2u32.saturating_pow(in_a_row - 1).min(MAX_BACKOFF);
            if *t >= asked || t.elapsed() <= backoff {
                return Err(e.clone());
            }
        }
        // Taken before the refresh: a write during it is seen by the next.
        let (all, written): (Vec<K>, BTreeSet<K>) = {
            let mut asked = self.lock_asked();
            let written = std::mem::take(&mut asked.stale);
            (asked.keys.iter().cloned().collect(), written)
        };
        let began = Instant::now();
        a.serves = self.window(all.len());
        // Shared: several calls that must all land, paced whoever makes
        // them (see `pace::shared`).
        match crate::aws::pace::shared(fetch(all.clone())).await {
            Ok(values) => {
                self.note(&all, &a, &values);
                a.read = all.into_iter().collect();
                a.at = Some(began);
                a.values = values;
                a.failed = None;
                Ok(pick(&a.values, keys))
            }
            Err(e) => {
                // Keys written before it stay written: their next read reads
                // them alone, not held back by this failure's window.
                self.lock_asked().stale.extend(written);
                let in_a_row = a.failed.as_ref().map_or(0, |f| f.1) + 1;
                a.failed = Some((began, in_a_row, e.clone()));
                Err(e)
            }
        }
    }

    /// A read of keys this member wrote (the read-back of a weight change):
    /// read alone, at once, not behind a refresh of every member's keys that
    /// may be waiting for its tokens. The answer takes the values when no
    /// refresh is under way; while one is, it may store what it read before
    /// the write, so the keys stay written and the next read reads them
    /// alone again.
    async fn read_back<F, Fut>(&self, keys: &[K], fetch: F) -> Result<BTreeMap<K, V>, PortError>
    where
        F: FnOnce(Vec<K>) -> Fut,
        Fut: Future<Output = Result<BTreeMap<K, V>, PortError>>,
    {
        let values = crate::aws::pace::patient(fetch(keys.to_vec())).await?;
        if let Ok(mut a) = self.answer.try_lock() {
            {
                let mut asked = self.lock_asked();
                for k in keys {
                    asked.stale.remove(k);
                }
            }
            self.note(keys, &a, &values);
            for k in keys {
                a.values.remove(k);
            }
            a.values.extend(values.clone());
        }
        Ok(values)
    }

    /// `keys` were written: the next read of any of them refreshes.
    pub fn forget(&self, keys: impl IntoIterator<Item = K>) {
        self.lock_asked().stale.extend(keys);
    }

    fn lock_asked(&self) -> std::sync::MutexGuard<'_, Asked<K>> {
        self.asked.lock().expect("shared reads: asked")
    }
}

/// The values of `keys` in `values`, those that have one.
fn pick<K: Ord + Clone, V: Clone>(values: &BTreeMap<K, V>, keys: &[K]) -> BTreeMap<K, V> {
    keys.iter()
        .filter_map(|k| values.get(k).map(|v| (k.clone(), v.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A fetch that counts its calls and answers each key with the call's number.
    fn counting(
        calls: &Arc<AtomicUsize>,
    ) -> impl FnOnce(
        Vec<&'static str>,
    ) -> std::future::Ready<Result<BTreeMap<&'static str, usize>, PortError>> {
        let calls = calls.clone();
        move |keys| {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            std::future::ready(Ok(keys.into_iter().map(|k| (k, n)).collect()))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn members_share_one_refresh_per_fresh_window() {
        let shared = SharedReads::new(Duration::from_secs(1));
        let calls = Arc::new(AtomicUsize::new(0));
        shared.read(&["a"], counting(&calls)).await.unwrap();
        // A new key: refreshed, and the refresh reads both.
        shared.read(&["b"], counting(&calls)).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // Covered and fresh: no call, for either member.
        let a = shared.read(&["a"], counting(&calls)).await.unwrap();
        let b = shared.read(&["b"], counting(&calls)).await.unwrap();
        assert_eq!((a["a"], b["b"], calls.load(Ordering::SeqCst)), (2, 2, 2));
        // Past the window: one refresh serves both again.
        tokio::time::advance(Duration::from_millis(1_001)).await;
        shared.read(&["b"], counting(&calls)).await.unwrap();
        let a = shared.read(&["a"], counting(&calls)).await.unwrap();
        assert_eq!((a["a"], calls.load(Ordering::SeqCst)), (3, 3));
    }

    /// A fetch that counts its calls and fails each with throttling.
    fn throttled(
        calls: &Arc<AtomicUsize>,
    ) -> impl FnOnce(
        Vec<&'static str>,
    ) -> std::future::Ready<Result<BTreeMap<&'static str, usize>, PortError>> {
        let calls = calls.clone();
        move |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Err(PortError::new(
                "DescribeAlarms",
                crate::ports::ErrorKind::Transient,
                "Throttling: Rate exceeded",
            )))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_refresh_is_not_tried_again_before_its_window_backing_off() {
        let shared = SharedReads::new(Duration::from_secs(1));
        let calls = Arc::new(AtomicUsize::new(0));
        // Ten members in a row within the window: one call, ten errors.
        for _ in 0..10 {
            let e = shared.read(&["a"], throttled(&calls)).await.unwrap_err();
            assert!(e.message.contains("Throttling"));
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "tried again within its window"
        );
        // A failure in a row doubles the window: 1 s, then 2 s on.
        let mut tried_at = vec![];
        for ms in (250..=20_000).step_by(250) {
            tokio::time::advance(Duration::from_millis(250)).await;
            let before = calls.load(Ordering::SeqCst);
            let _ = shared.read(&["a"], throttled(&calls)).await;
            if calls.load(Ordering::SeqCst) > before {
                tried_at.push(ms);
            }
        }
        assert_eq!(
            tried_at,
            vec![1_250, 3_500, 5_750, 8_000, 10_250, 12_500, 14_750, 17_000, 19_250]
        );
        // A success ends the backoff: the next window is `fresh` again.
        tokio::time::advance(Duration::from_millis(2_001)).await;
        shared.read(&["a"], counting(&calls)).await.unwrap();
        tokio::time::advance(Duration::from_millis(1_001)).await;
        let before = calls.load(Ordering::SeqCst);
        let _ = shared.read(&["a"], throttled(&calls)).await;
        assert_eq!(calls.load(Ordering::SeqCst), before + 1);
    }

    #[tokio::test(start_paused = true)]
    async fn members_queued_behind_a_failing_refresh_take_its_error() {
        let shared = Arc::new(SharedReads::new(Duration::from_millis(100)));
        let calls = Arc::new(AtomicUsize::new(0));
        // A refresh that fails after 5 s (longer than its window).
        let slow = |calls: Arc<AtomicUsize>| {
            move |_: Vec<&'static str>| async move {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(5)).await;
                Err::<BTreeMap<&'static str, usize>, _>(PortError::new(
                    "DescribeAlarms",
                    crate::ports::ErrorKind::Transient,
                    "Throttling",
                ))
            }
        };
        let members: Vec<_> = (0..5)
            .map(|_| {
                let (shared, calls) = (shared.clone(), calls.clone());
                tokio::spawn(async move { shared.read(&["a"], slow(calls)).await })
            })
            .collect();
        for m in members {
            assert!(m.await.unwrap().is_err());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one refresh for the five");
    }

    #[tokio::test(start_paused = true)]
    async fn a_refresh_of_many_calls_serves_long_enough_to_keep_its_budget() {
        // 4 calls a second, 100 keys a call: 250 keys are 3 calls, 750 ms.
        let shared = SharedReads::new(Duration::from_millis(500)).calls_at_most(4.0, 100);
        let calls = Arc::new(AtomicUsize::new(0));
        let keys: Vec<&'static str> = (0..250)
            .map(|i| &*Box::leak(format!("k{i}").into_boxed_str()))
            .collect();
        shared.read(&keys, counting(&calls)).await.unwrap();
        tokio::time::advance(Duration::from_millis(700)).await;
        shared.read(&keys, counting(&calls)).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1, "served within 750 ms");
        tokio::time::advance(Duration::from_millis(60)).await;
        shared.read(&keys, counting(&calls)).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // Few keys: `fresh` alone.
        let few = SharedReads::new(Duration::from_millis(500)).calls_at_most(4.0, 100);
        few.read(&["a"], counting(&calls)).await.unwrap();
        tokio::time::advance(Duration::from_millis(510)).await;
        few.read(&["a"], counting(&calls)).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_written_key_is_read_again_at_once() {
        let shared = SharedReads::new(Duration::from_secs(60));
        let calls = Arc::new(AtomicUsize::new(0));
        shared.read(&["a", "b"], counting(&calls)).await.unwrap();
        shared.forget(["a"]);
        // The other member's key was not written: still served.
        shared.read(&["b"], counting(&calls)).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let a = shared.read(&["a"], counting(&calls)).await.unwrap();
        assert_eq!(a["a"], 2, "the read after a write reads again");
        let both = shared.read(&["a", "b"], counting(&calls)).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2, "then served again");
        // Only the written key was read again; the other's answer stands.
        assert_eq!((both["a"], both["b"]), (2, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_refresh_that_changes_a_key_wakes_the_member_that_reads_it() {
        let shared = Arc::new(SharedReads::new(Duration::from_secs(1)));
        let answer = |a: usize, b: usize| {
            move |_| std::future::ready(Ok(BTreeMap::from([("a", a), ("b", b)])))
        };
        shared.read(&["a", "b"], answer(0, 0)).await.unwrap();
        // Member "a" waits from its read on.
        let since = shared.serial();
        let waiting = {
            let shared = shared.clone();
            tokio::spawn(async move { shared.changed_since(&["a"], since).await })
        };
        // A refresh with nothing changed, then one that changes "b" only: no wake.
        for (a, b) in [(0, 0), (0, 1)] {
            tokio::time::advance(Duration::from_millis(1_001)).await;
            shared.read(&["b"], answer(a, b)).await.unwrap();
            tokio::task::yield_now().await;
            assert!(!waiting.is_finished(), "woken by ({a}, {b})");
        }
        // Another member's refresh finds "a" changed: "a" is woken.
        tokio::time::advance(Duration::from_millis(1_001)).await;
        shared.read(&["b"], answer(1, 1)).await.unwrap();
        tokio::time::timeout(Duration::from_millis(1), waiting)
            .await
            .expect("woken at once")
            .unwrap();
        // A member whose read came after that refresh is not woken by it.
        let since = shared.serial();
        let later = shared.changed_since(&["a"], since);
        assert!(tokio::time::timeout(Duration::from_secs(5), later)
            .await
            .is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn members_queued_behind_a_slow_refresh_take_its_answer() {
        let shared = Arc::new(SharedReads::new(Duration::from_secs(1)));
        let calls = Arc::new(AtomicUsize::new(0));
        // A refresh that takes 5 s (calls waiting for their tokens).
        let slow = |calls: Arc<AtomicUsize>| {
            move |keys: Vec<&'static str>| async move {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(keys.into_iter().map(|k| (k, n)).collect())
            }
        };
        shared
            .read(&["a", "b", "c"], counting(&calls))
            .await
            .unwrap();
        tokio::time::advance(Duration::from_millis(1_001)).await;
        let members: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .map(|k| {
                let (shared, calls) = (shared.clone(), calls.clone());
                tokio::spawn(async move { shared.read(&[k], slow(calls)).await.unwrap()[k] })
            })
            .collect();
        let mut got = vec![];
        for m in members {
            got.push(m.await.unwrap());
        }
        // One refresh for the three, not one each in single file.
        assert_eq!((got, calls.load(Ordering::SeqCst)), (vec![2, 2, 2], 2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_back_does_not_wait_behind_a_refresh_under_way() {
        let shared = Arc::new(SharedReads::new(Duration::from_secs(60)));
        let calls = Arc::new(AtomicUsize::new(0));
        shared.read(&["a", "b"], counting(&calls)).await.unwrap();
        // Member "c" asks for the first time: every key is refreshed, and
        // the refresh waits 5 s for its tokens.
        let refresh = {
            let shared = shared.clone();
            tokio::spawn(async move {
                shared
                    .read(&["c"], |keys: Vec<&'static str>| async move {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        Ok(keys.into_iter().map(|k| (k, 100)).collect())
                    })
                    .await
            })
        };
        tokio::task::yield_now().await;
        // Member "a" wrote its key and reads it back meanwhile: at once.
        shared.forget(["a"]);
        let started = tokio::time::Instant::now();
        let a = shared.read(&["a"], counting(&calls)).await.unwrap();
        assert_eq!(a["a"], 2);
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "waited behind the refresh"
        );
        assert!(!refresh.is_finished());
        // The refresh may have read "a" before the write: once it lands, the
        // next read of "a" reads it alone again, then the answer serves it.
        refresh.await.unwrap().unwrap();
        let a = shared.read(&["a"], counting(&calls)).await.unwrap();
        assert_eq!((a["a"], calls.load(Ordering::SeqCst)), (3, 3));
        let a = shared.read(&["a"], counting(&calls)).await.unwrap();
        assert_eq!((a["a"], calls.load(Ordering::SeqCst)), (3, 3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_the_refresh_did_not_find_is_absent_not_unread() {
        let shared: SharedReads<&str, usize> = SharedReads::new(Duration::from_secs(60));
        let got = shared
            .read(&["gone"], |_| std::future::ready(Ok(BTreeMap::new())))
            .await
            .unwrap();
        assert!(got.is_empty());
        // Served from the answer: no second call.
        let got = shared
            .read(&["gone"], |_| async { panic!("read again") })
            .await
            .unwrap();
        assert!(got.is_empty());
    }
}
