//! Per-source limits (docs/mssante.md S1): failed keys from one address are slowed down to a few a minute,
//! and the public directory answers each address at a bounded rate. Token buckets, one per address; other
//! addresses never wait for one that is limited.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses tracked at most; beyond, buckets that are full again are forgotten first.
const MAX_TRACKED: usize = 100_000;

/// A token bucket per address: `burst` tokens, refilled at `per_minute`.
#[derive(Debug)]
pub struct Buckets {
    burst: f64,
    per_second: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Buckets {
    /// `burst` at once, then `per_minute`.
    pub fn new(burst: u32, per_minute: u32) -> Self {
        Buckets {
            burst: f64::from(burst.max(1)),
            per_second: f64::from(per_minute.max(1)) / 60.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The failed-key limiter of the rule: a source may fail 15 times at once, then 10 a minute,
    /// so that at most 25 failures fit in any minute and the first 10 are never slowed.
    pub fn failed_keys() -> Self {
        Buckets::new(15, 10)
    }

    fn refilled(&self, b: Bucket, now: Instant) -> Bucket {
        let gained = now.saturating_duration_since(b.at).as_secs_f64() * self.per_second;
        Bucket {
            tokens: (b.tokens + gained).min(self.burst),
            at: now,
        }
    }

    fn wait(&self, tokens: f64) -> Duration {
        Duration::from_secs_f64(((1.0 - tokens) / self.per_second).max(0.0))
    }

    /// Without taking anything: how long `source` must wait before it may go on (`None`: it may now).
    pub fn blocked(&self, source: IpAddr, now: Instant) -> Option<Duration> {
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = self.refilled(*buckets.get(&source)?, now);
        (b.tokens < 1.0).then(|| self.wait(b.tokens))
    }

    /// Takes a token for `source`: `Err(wait)` when it has none left.
    pub fn take(&self, source: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(&source) {
            let burst = self.burst;
            buckets.retain(|_, b| self.refilled(*b, now).tokens < burst);
            if buckets.len() >= MAX_TRACKED {
                // a flood from this many addresses: forget rather than grow without bound
                buckets.clear();
            }
        }
        let fresh = Bucket {
            tokens: self.burst,
            at: now,
        };
        let b = buckets.entry(source).or_insert(fresh);
        *b = self.refilled(*b, now);
        if b.tokens < 1.0 {
            return Err(self.wait(b.tokens));
        }
        b.tokens -= 1.0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn failed_keys_are_limited_after_ten_and_before_thirty_in_a_minute() {
        let limiter = Buckets::failed_keys();
        let start = Instant::now();
        let source = ip("192.0.2.7");
        // failures spread over one minute, as fast as they are let through
        let mut allowed = 0;
        let mut t = start;
        while t < start + Duration::from_secs(60) {
            match limiter.take(source, t) {
                Ok(()) => allowed += 1,
                Err(wait) => assert!(wait <= Duration::from_secs(6), "{wait:?}"),
            }
            t += Duration::from_millis(250);
        }
        assert!(
            (10..=30).contains(&allowed),
            "{allowed} failures let through in a minute"
        );
        for _ in 0..10 {
            assert!(Buckets::failed_keys().take(source, start).is_ok());
        }
        // another address is not slowed
        assert_eq!(limiter.blocked(ip("192.0.2.8"), t), None);
        assert!(limiter.blocked(source, t).is_some());
        // and the limited one recovers
        assert_eq!(limiter.blocked(source, t + Duration::from_secs(90)), None);
    }

    #[test]
    fn a_rate_lets_its_burst_through_then_its_pace() {
        let limiter = Buckets::new(5, 60);
        let now = Instant::now();
        let a = ip("2001:db8::1");
        for _ in 0..5 {
            limiter.take(a, now).unwrap();
        }
        let wait = limiter.take(a, now).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        limiter.take(a, now + Duration::from_secs(1)).unwrap();
        assert!(limiter.take(a, now + Duration::from_secs(1)).is_err());
    }
}
