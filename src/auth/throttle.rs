//! Failed SCIM authentications are rate-limited per client address: past the allowance, the
//! address is refused (429) before its token is even looked at, until the limiter allows it
//! again. Tokens are far too long to guess; this keeps guessing (and the writes refused
//! requests cost) bounded all the same.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

/// Most addresses held refused at once; past it, expired ones are dropped first.
const MAX_BLOCKED: usize = 100_000;
/// Failures between two clean-ups of the limiter's per-address state.
const CLEANUP_EVERY: usize = 10_000;

/// The process's record of failed authentications by address.
pub struct AuthThrottle {
    failures: DefaultKeyedRateLimiter<IpAddr>,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    /// Whether any address was ever refused: until then every request skips the lock.
    any_blocked: std::sync::atomic::AtomicBool,
    since_cleanup: std::sync::atomic::AtomicUsize,
}

impl AuthThrottle {
    /// Allows `per_minute` failed authentications a minute per address, in bursts of as many.
    pub fn new(per_minute: NonZeroU32) -> AuthThrottle {
        AuthThrottle {
            failures: DefaultKeyedRateLimiter::keyed(Quota::per_minute(per_minute)),
            blocked: Mutex::new(HashMap::new()),
            any_blocked: Default::default(),
            since_cleanup: Default::default(),
        }
    }

    /// How long `addr` is still refused, if it is.
    pub fn refused_for(&self, addr: IpAddr) -> Option<Duration> {
        // Every SCIM request asks: the usual answer costs no lock.
        if !self.any_blocked.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        let blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        let until = *blocked.get(&addr)?;
        until.checked_duration_since(Instant::now())
    }

    /// Counts a failed authentication from `addr`; past its allowance, refuses the address
    /// until the limiter allows it again.
    pub fn record_failure(&self, addr: IpAddr) {
        let counted = self.failures.check_key(&addr);
        if self
            .since_cleanup
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            % CLEANUP_EVERY
            == CLEANUP_EVERY - 1
        {
            self.failures.retain_recent();
            self.failures.shrink_to_fit();
        }
        let Err(not_until) = counted else {
            return;
        };
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let now = Instant::now();
        let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        if blocked.len() >= MAX_BLOCKED {
            blocked.retain(|_, until| *until > now);
        }
        if blocked.len() < MAX_BLOCKED {
            blocked.insert(addr, now + wait.max(Duration::from_secs(1)));
            self.any_blocked
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// The client's address: the peer, or — when the peer is one of `trusted_proxies` — the
/// nearest address in `X-Forwarded-For` that is not a trusted proxy. `None` without a peer
/// (never on TCP).
pub fn client_addr(req: &actix_web::HttpRequest, trusted_proxies: &[IpAddr]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    if !trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|a| !trusted_proxies.contains(a))
            .unwrap_or(peer),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_refused_past_its_allowance_and_others_are_not() {
        let t = AuthThrottle::new(NonZeroU32::new(3).unwrap());
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for _ in 0..3 {
            t.record_failure(a);
            assert_eq!(t.refused_for(a), None);
        }
        t.record_failure(a);
        assert!(
            t.refused_for(a)
                .is_some_and(|d| d <= Duration::from_secs(20))
        );
        assert_eq!(t.refused_for(b), None);
    }
}
