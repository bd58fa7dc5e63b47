//! The daemon's sense of time, injected so tests (and a council trying driftwatch out) can travel
//! in time instead of waiting.
//!
//! Owns "what time is it" and "wake me at T". The system clock sleeps in slices of at most a
//! minute, so a wall-clock jump (NTP, a suspended VM) is noticed promptly. The manual clock only
//! moves when told to, forwards only. [`wall_now`] is the real time whatever the daemon's clock
//! says, for what a receiver checks against its own clock. The wall clock is read only here and
//! in `main.rs`. Must not know about the scheduler or the store.

use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The longest the system clock sleeps before looking at the time again.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// The real time now, even under a manual clock: for what the outside world checks against its
/// own clock, such as a signed webhook's timestamp (a receiver refuses one more than a few
/// minutes from its own time). Plans and messages use [`Clock::now`].
pub fn wall_now() -> DateTime<Utc> {
    Utc::now()
}

#[derive(Debug, Clone)]
pub enum Clock {
    System,
    /// Moves only through [`Clock::set`]: for tests and for trying driftwatch out.
    Manual(Arc<watch::Sender<DateTime<Utc>>>),
}

#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    #[error("the clock is the system clock; start with --manual-clock to move it by hand")]
    NotManual,
    #[error("the clock only moves forwards (it is {now}, asked for {asked})")]
    Backwards {
        now: DateTime<Utc>,
        asked: DateTime<Utc>,
    },
}

impl Clock {
    pub fn manual(start: DateTime<Utc>) -> Clock {
        Clock::Manual(Arc::new(watch::Sender::new(start)))
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => wall_now(),
            Clock::Manual(tx) => *tx.borrow(),
        }
    }

    pub fn is_manual(&self) -> bool {
        matches!(self, Clock::Manual(_))
    }

    /// Moves a manual clock to `to` (which may equal the current time).
    pub fn set(&self, to: DateTime<Utc>) -> Result<(), ClockError> {
        let Clock::Manual(tx) = self else {
            return Err(ClockError::NotManual);
        };
        let now = *tx.borrow();
        if to < now {
            return Err(ClockError::Backwards { now, asked: to });
        }
        tx.send_replace(to);
        Ok(())
    }

    /// Returns at `until` or a little before (the caller looks at the time again and decides).
    pub async fn sleep_until(&self, until: DateTime<Utc>) {
        match self {
            Clock::System => {
                let wait = (until - wall_now()).to_std().unwrap_or(Duration::ZERO);
                tokio::time::sleep(wait.min(MAX_SLEEP)).await;
            }
            Clock::Manual(tx) => {
                let mut rx = tx.subscribe();
                // Err only if the sender is gone, which cannot happen while `self` holds it.
                let _ = rx.wait_for(|now| *now >= until).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_clock_wakes_sleepers_when_moved_past_their_time() {
        let start = "2027-01-04T09:00:00Z".parse().unwrap();
        let clock = Clock::manual(start);
        let later: DateTime<Utc> = "2027-01-05T09:00:00Z".parse().unwrap();
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep_until(later).await }
        });
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.set(later).unwrap();
        sleeper.await.unwrap();
        assert_eq!(clock.now(), later);
        assert!(matches!(
            clock.set(start),
            Err(ClockError::Backwards { .. })
        ));
        assert!(matches!(
            Clock::System.set(start),
            Err(ClockError::NotManual)
        ));
    }
}
