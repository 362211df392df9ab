//! Converting many tensors at once, on every core the machine has.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::error::Result;

/// `f` applied to every job, on up to `available_parallelism` threads taking jobs in turn;
/// results in job order. On failure, the error of the first failing job (by index), so the
/// message does not depend on thread timing.
pub(super) fn parallel_map<J, T, F>(jobs: &[J], f: F) -> Result<Vec<T>>
where
    J: Sync,
    T: Send,
    F: Fn(&J) -> Result<T> + Sync,
{
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(jobs.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(job) = jobs.get(i) else { break done };
            done.push((i, f(job)));
        }
    };
    let mut results: Vec<(usize, Result<T>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        let mut all = work();
        for handle in handles {
            // A panicking conversion is a bug in this crate; pass it on.
            all.extend(
                handle
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e)),
            );
        }
        all
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::CheckpointError;

    #[test]
    fn keeps_order_and_reports_the_first_error() {
        let jobs: Vec<usize> = (0..100).collect();
        let squares = parallel_map(&jobs, |&j| Ok(j * j)).expect("no error");
        assert_eq!(squares, jobs.iter().map(|j| j * j).collect::<Vec<_>>());
        let failing = parallel_map(&jobs, |&j| {
            if j % 10 == 7 {
                Err(CheckpointError::MissingField {
                    path: "x".into(),
                    field: j.to_string(),
                })
            } else {
                Ok(j)
            }
        });
        assert!(
            matches!(failing, Err(CheckpointError::MissingField { field, .. }) if field == "7")
        );
        assert_eq!(
            parallel_map(&[] as &[usize], |&j| Ok(j)).expect("empty"),
            Vec::<usize>::new()
        );
    }
}
