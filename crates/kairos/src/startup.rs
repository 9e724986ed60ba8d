//! Where a server's start-up time goes: named phases (tor launch, bootstrap, node start,
//! ADD_ONION, descriptor upload, join), printed once the server is ready and written to its
//! ready file, so a slow start can be read off without a profiler.

use std::time::{Duration, Instant};

/// Phases in the order they ran, each with its own duration.
pub struct Phases {
    started: Instant,
    last: Instant,
    done: Vec<(&'static str, Duration)>,
}

impl Phases {
    pub fn new() -> Self {
        let now = Instant::now();
        Phases {
            started: now,
            last: now,
            done: Vec::new(),
        }
    }

    /// Ends phase `name` now (it began when the previous one ended).
    pub fn mark(&mut self, name: &'static str) {
        let now = Instant::now();
        self.done
            .push((name, now.saturating_duration_since(self.last)));
        self.last = now;
    }

    /// Ends phases measured elsewhere (by tor's side), then `rest` for what is left until now.
    pub fn extend(&mut self, measured: &[(&'static str, Duration)], rest: &'static str) {
        let now = Instant::now();
        let mut left = now.saturating_duration_since(self.last);
        for &(name, d) in measured {
            self.done.push((name, d.min(left)));
            left = left.saturating_sub(d);
        }
        if left >= Duration::from_millis(5) || measured.is_empty() {
            self.done.push((rest, left));
        }
        self.last = now;
    }

    /// `tor launch 0.12 s, bootstrap 1.31 s, …; total 2.95 s`.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = (self.done.iter())
            .map(|(name, d)| format!("{name} {:.2} s", d.as_secs_f64()))
            .collect();
        format!(
            "{}; total {:.2} s",
            parts.join(", "),
            self.last
                .saturating_duration_since(self.started)
                .as_secs_f64()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_add_up_to_the_total() {
        let mut p = Phases::new();
        std::thread::sleep(Duration::from_millis(20));
        p.extend(&[("a", Duration::from_millis(2))], "b");
        p.mark("c");
        let text = p.summary();
        assert!(text.starts_with("a 0.00 s, b "), "{text}");
        assert!(
            text.contains(" s, c ") && text.contains(" s; total "),
            "{text}"
        );
        let sum: Duration = p.done.iter().map(|(_, d)| *d).sum();
        assert_eq!(sum, p.last.saturating_duration_since(p.started));
    }
}
