//! The process's CPU time, for the share of the machine a training epoch keeps busy.
//!
//! An epoch's CPU seconds over its wall seconds is its mean busy cores: 200 % on two cores is
//! both fully used. `caplab run` logs it per epoch, stores it in `history.jsonl` (`cpu_s`) and
//! prints it in the report's training table.

/// User plus system CPU seconds of this process so far, over all its threads (`getrusage`);
/// `None` where the call is not available.
pub fn process_cpu_seconds() -> Option<f64> {
    #[cfg(unix)]
    {
        // SAFETY: `getrusage` fills the zeroed struct it is given; RUSAGE_SELF is always valid.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
            return None;
        }
        let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
        Some(seconds(usage.ru_utime) + seconds(usage.ru_stime))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_seconds_grow_with_work_on_two_threads() {
        let spin = || {
            let start = std::time::Instant::now();
            let mut x = 0u64;
            while start.elapsed().as_millis() < 200 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            std::hint::black_box(x);
        };
        let before = process_cpu_seconds().expect("getrusage on unix");
        std::thread::scope(|s| {
            s.spawn(spin);
            s.spawn(spin);
        });
        let used = process_cpu_seconds().expect("getrusage on unix") - before;
        // Two threads spinning 0.2 s each: at least 0.2 s of CPU even on one core.
        assert!(used >= 0.19, "{used} s");
    }
}
