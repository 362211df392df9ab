use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

fn copies(pairs: &[(u32, u32)]) -> Vec<PageCopy> {
    pairs
        .iter()
        .map(|&(hbm, host)| PageCopy { hbm, host })
        .collect()
}

fn run(hbm_first: u32, host_first: u32, pages: u32) -> CopyRun {
    CopyRun {
        hbm_first,
        host_first,
        pages,
    }
}

#[test]
fn adjacent_pages_coalesce_and_gaps_split() {
    // 3,4,5 ↔ 10,11,12 is one run; 7 breaks the HBM run; 8 ↔ 20 breaks the host run.
    let c = copies(&[(5, 12), (3, 10), (4, 11), (7, 14), (8, 20), (9, 21)]);
    assert_eq!(
        coalesce(&c),
        vec![run(3, 10, 3), run(7, 14, 1), run(8, 20, 2)]
    );
    assert!(coalesce(&[]).is_empty());
    // Host ids consecutive but HBM ids reversed: no run.
    assert_eq!(coalesce(&copies(&[(1, 5), (0, 6)])).len(), 2);
}

#[test]
fn on_demand_copies_go_ahead_of_earlier_prefetches() {
    let mut s = StreamScheduler::new(64, 1024);
    s.submit(
        Direction::H2d,
        Priority::Prefetch,
        &copies(&[(0, 0), (1, 1)]),
    )
    .unwrap();
    s.submit(Direction::H2d, Priority::OnDemand, &copies(&[(9, 9)]))
        .unwrap();
    let first = s.poll_batch(Direction::H2d).unwrap();
    assert_eq!(first.priority, Priority::OnDemand);
    assert_eq!(first.runs, vec![run(9, 9, 1)]);
    let second = s.poll_batch(Direction::H2d).unwrap();
    assert_eq!(second.priority, Priority::Prefetch);
    assert_eq!(second.runs, vec![run(0, 0, 2)]);
    assert!(s.poll_batch(Direction::H2d).is_none());
    assert!(s.poll_batch(Direction::D2h).is_none());
    s.check_invariants();
}

#[test]
fn promote_moves_a_prefetch_to_the_front() {
    let mut s = StreamScheduler::new(1, 1024);
    s.submit(
        Direction::H2d,
        Priority::Prefetch,
        &copies(&[(0, 0), (5, 5)]),
    )
    .unwrap();
    assert!(s.promote(5));
    assert!(!s.promote(42));
    assert_eq!(
        s.poll_batch(Direction::H2d).unwrap().runs,
        vec![run(5, 5, 1)]
    );
    assert_eq!(
        s.poll_batch(Direction::H2d).unwrap().runs,
        vec![run(0, 0, 1)]
    );
}

#[test]
fn a_page_being_swapped_out_is_not_reused_until_its_copy_completed() {
    let mut s = StreamScheduler::new(64, 1024);
    s.submit(Direction::D2h, Priority::OnDemand, &copies(&[(3, 0)]))
        .unwrap();
    assert!(s.is_busy(3));
    let batch = s.poll_batch(Direction::D2h).unwrap();
    // Still in flight: a swap-in into page 3 must wait.
    assert_eq!(
        s.submit(Direction::H2d, Priority::OnDemand, &copies(&[(3, 7)])),
        Err(SchedError::PageBusy { hbm: 3 })
    );
    assert!(s.is_busy(3));
    assert_eq!(
        s.handle_complete(batch.ticket),
        Ok((Direction::D2h, vec![3]))
    );
    assert!(!s.is_busy(3));
    s.submit(Direction::H2d, Priority::OnDemand, &copies(&[(3, 7)]))
        .unwrap();
    assert_eq!(
        s.handle_complete(batch.ticket),
        Err(SchedError::UnknownTicket(batch.ticket))
    );
    s.check_invariants();
}

#[test]
fn requests_are_all_or_nothing_and_bounded() {
    let mut s = StreamScheduler::new(2, 4);
    assert_eq!(
        s.submit(
            Direction::H2d,
            Priority::OnDemand,
            &copies(&[(1, 1), (1, 2)])
        ),
        Err(SchedError::Duplicate { hbm: 1 })
    );
    assert!(!s.is_busy(1), "a refused request leaves nothing behind");
    s.submit(
        Direction::H2d,
        Priority::OnDemand,
        &copies(&[(0, 0), (1, 1), (2, 2)]),
    )
    .unwrap();
    assert!(matches!(
        s.submit(
            Direction::D2h,
            Priority::Prefetch,
            &copies(&[(5, 5), (6, 6)])
        ),
        Err(SchedError::QueueFull { .. })
    ));
    // Batches hold at most two pages.
    assert_eq!(
        s.poll_batch(Direction::H2d).unwrap().runs,
        vec![run(0, 0, 2)]
    );
    assert_eq!(
        s.poll_batch(Direction::H2d).unwrap().runs,
        vec![run(2, 2, 1)]
    );
    s.check_invariants();
}

/// Random submits, polls and completions: every accepted page is copied exactly once, runs
/// cover exactly the batch's pages, and the busy set always matches the queues.
#[test]
fn random_operations_copy_every_accepted_page_once() {
    for seed in 0..32 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut s = StreamScheduler::new(rng.random_range(1..16), 256);
        let (mut accepted, mut copied) = (Vec::new(), Vec::new());
        let mut tickets = Vec::new();
        for _ in 0..400 {
            match rng.random_range(0..4) {
                0 => {
                    let n = rng.random_range(1..6);
                    let start = rng.random_range(0..60u32);
                    let pages: Vec<PageCopy> = (0..n)
                        .map(|i| PageCopy {
                            hbm: start + i,
                            host: rng.random_range(0..4u32) * 100 + start + i,
                        })
                        .collect();
                    let dir = DIRS[rng.random_range(0..2)];
                    let prio = [Priority::OnDemand, Priority::Prefetch][rng.random_range(0..2)];
                    if s.submit(dir, prio, &pages).is_ok() {
                        accepted.extend(pages.iter().map(|p| (dir, p.hbm, p.host)));
                    }
                }
                1 | 2 => {
                    let dir = DIRS[rng.random_range(0..2)];
                    if let Some(b) = s.poll_batch(dir) {
                        for r in &b.runs {
                            copied.extend(
                                (0..r.pages).map(|i| (dir, r.hbm_first + i, r.host_first + i)),
                            );
                        }
                        tickets.push(b.ticket);
                    }
                }
                _ => {
                    if !tickets.is_empty() {
                        let t = tickets.swap_remove(rng.random_range(0..tickets.len()));
                        s.handle_complete(t).unwrap();
                    }
                }
            }
            s.check_invariants();
        }
        for dir in DIRS {
            while let Some(b) = s.poll_batch(dir) {
                for r in &b.runs {
                    copied.extend((0..r.pages).map(|i| (dir, r.hbm_first + i, r.host_first + i)));
                }
            }
        }
        accepted.sort_unstable_by_key(|&(d, h, o)| (dir_index(d), h, o));
        copied.sort_unstable_by_key(|&(d, h, o)| (dir_index(d), h, o));
        assert_eq!(accepted, copied, "seed {seed}");
    }
}
