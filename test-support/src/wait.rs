//! Waits with a deadline: a probe is asked again and again until it says done, and after the
//! deadline its last answer is the test's failure, so a wait never hangs a suite and always
//! says what it saw.

use std::fmt::Display;
use std::time::{Duration, Instant};

/// Calls `probe` every `every` until it returns `Ok`, and returns that value; once `within`
/// has passed, panics with the last `Err` (what was seen instead).
#[track_caller]
pub fn until<T, E: Display>(
    within: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Result<T, E>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        match probe() {
            Ok(v) => return v,
            Err(e) => assert!(Instant::now() < deadline, "{e}"),
        }
        std::thread::sleep(every);
    }
}

/// [`until`] for an async probe, sleeping on the tokio timer between tries.
pub async fn until_async<T, E: Display>(
    within: Duration,
    every: Duration,
    mut probe: impl AsyncFnMut() -> Result<T, E>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        match probe().await {
            Ok(v) => return v,
            Err(e) => assert!(Instant::now() < deadline, "{e}"),
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_first_ok() {
        let mut n = 0;
        let v = until(Duration::from_secs(5), Duration::ZERO, || {
            n += 1;
            if n == 3 {
                Ok(n)
            } else {
                Err("not yet")
            }
        });
        assert_eq!(v, 3);
    }

    #[test]
    #[should_panic(expected = "still 7")]
    fn panics_with_the_last_answer() {
        until::<(), _>(Duration::from_millis(20), Duration::from_millis(5), || {
            Err("still 7")
        });
    }

    #[tokio::test]
    async fn async_probes_may_borrow() {
        let seen = [1, 2];
        let mut i = 0;
        let v = until_async(Duration::from_secs(5), Duration::ZERO, async || {
            i += 1;
            seen.get(i).copied().ok_or("none")
        })
        .await;
        assert_eq!(v, 2);
    }
}
