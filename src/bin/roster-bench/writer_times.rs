//! The writer's batch and commit times, read from the server's `/metrics` before and after a
//! phase: what every write of that phase waited behind. A create's reply waits for the batch
//! being committed when it arrives, then for its own; the commit is the database making a
//! batch durable (SQLite's WAL sync, Postgres' WAL flush), which no batching shares out.

use crate::{agent, send};

/// The metrics token the harness starts its server with (`ROSTER_METRICS_TOKEN`).
pub(crate) const METRICS_TOKEN: &str = "roster-bench-metrics-token";

/// One scrape's cumulative buckets (upper bound in seconds, count) of the two histograms.
#[derive(Default, Clone)]
pub(crate) struct WriterTimes {
    batch: Vec<(f64, f64)>,
    commit: Vec<(f64, f64)>,
}

/// Scrapes `/metrics` of the server at `base` (empty histograms when it cannot).
pub(crate) fn scrape(base: &str) -> WriterTimes {
    let (status, text) = send(
        &agent(),
        "GET",
        &format!("{base}/metrics"),
        METRICS_TOKEN,
        None,
    );
    if status != 200 {
        eprintln!("roster-bench: /metrics answered {status}; no writer times");
        return WriterTimes::default();
    }
    WriterTimes {
        batch: buckets(&text, "roster_writer_batch_duration_seconds"),
        commit: buckets(&text, "roster_writer_commit_duration_seconds"),
    }
}

/// `name`'s cumulative buckets in Prometheus's text format, in the order given (ascending).
fn buckets(text: &str, name: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{name}_bucket{{le=\"");
    text.lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .filter_map(|rest| {
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.trim().parse().ok()?))
        })
        .collect()
}

/// The `q` quantile of the observations between two scrapes of one histogram, interpolated
/// within its bucket as Prometheus's `histogram_quantile` does, in milliseconds; with the
/// number of observations.
fn quantile(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> (f64, f64) {
    let delta: Vec<(f64, f64)> = after
        .iter()
        .map(|&(le, n)| {
            let was = before.iter().find(|b| b.0 == le).map_or(0.0, |b| b.1);
            (le, n - was)
        })
        .collect();
    let total = delta.last().map_or(0.0, |d| d.1);
    if total <= 0.0 {
        return (f64::NAN, 0.0);
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(le, n) in &delta {
        if n >= rank {
            if le.is_infinite() {
                return (lower.0 * 1000.0, total);
            }
            let share = if n > lower.1 {
                (rank - lower.1) / (n - lower.1)
            } else {
                1.0
            };
            return ((lower.0 + (le - lower.0) * share) * 1000.0, total);
        }
        lower = (le, n);
    }
    (f64::NAN, total)
}

/// Prints the writer's batch and commit p50/p99 between `before` and `after`.
pub(crate) fn report(name: &str, before: &WriterTimes, after: &WriterTimes) {
    let (b50, batches) = quantile(&before.batch, &after.batch, 0.5);
    let (b99, _) = quantile(&before.batch, &after.batch, 0.99);
    let (c50, _) = quantile(&before.commit, &after.commit, 0.5);
    let (c99, _) = quantile(&before.commit, &after.commit, 0.99);
    println!(
        "writer {name:<40} batches {batches:>7.0}  batch p50 {b50:>7.2} ms  p99 {b99:>7.2} ms  commit (durable) p50 {c50:>7.2} ms  p99 {c99:>7.2} ms"
    );
}

#[cfg(test)]
mod tests {
    use super::{buckets, quantile};

    #[test]
    fn a_phases_quantile_comes_from_the_buckets_it_added_to() {
        let text =
            "x_bucket{le=\"0.001\"} 10\nx_bucket{le=\"0.01\"} 20\nx_bucket{le=\"+Inf\"} 20\n";
        let before = buckets(text, "x");
        assert_eq!(
            before,
            vec![(0.001, 10.0), (0.01, 20.0), (f64::INFINITY, 20.0)]
        );
        // Ten more, all between 1 and 10 ms: the median is halfway into that bucket.
        let after = vec![(0.001, 10.0), (0.01, 30.0), (f64::INFINITY, 30.0)];
        let (p50, n) = quantile(&before, &after, 0.5);
        assert_eq!(n, 10.0);
        assert!((p50 - 5.5).abs() < 1e-9, "{p50}");
        assert!(quantile(&after, &after, 0.5).0.is_nan());
    }
}
