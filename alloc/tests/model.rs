//! Property tests: random operation sequences on the tree and on the reference model, with
//! `check_invariants()` after every operation (see `fastlibra_alloc::model`).

use fastlibra_alloc::model::Harness;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn tree_agrees_with_model(bytes in proptest::collection::vec(any::<u8>(), 0..1200)) {
        let mut harness = Harness::new([6, 5, 4], true);
        if let Err(e) = harness.run_bytes(&bytes) {
            prop_assert!(false, "{}", e);
        }
    }

    #[test]
    fn tree_agrees_with_model_without_dependency(
        bytes in proptest::collection::vec(any::<u8>(), 0..1200)
    ) {
        let mut harness = Harness::new([6, 5, 4], false);
        if let Err(e) = harness.run_bytes(&bytes) {
            prop_assert!(false, "{}", e);
        }
    }

    #[test]
    fn roomy_tree_agrees_with_model(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let mut harness = Harness::new([40, 30, 20], true);
        if let Err(e) = harness.run_bytes(&bytes) {
            prop_assert!(false, "{}", e);
        }
    }
}

#[test]
fn random_sequences_reach_every_operation() {
    // A fixed pseudo-random byte stream; if the model or decoder stopped reaching an
    // operation's success path, the property tests above would silently test less.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let bytes: Vec<u8> = (0..30_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let mut harness = Harness::new([12, 10, 8], true);
    harness.run_bytes(&bytes).unwrap();
    let counts = harness.succeeded();
    assert!(
        counts.iter().all(|&c| c > 0),
        "some operation never succeeded: {counts:?}"
    );
}

#[test]
fn node_record_fits_the_metadata_budget() {
    let bytes = fastlibra_alloc::node::NODE_SLOT_BYTES;
    assert!(bytes <= 96, "a node slot is {bytes} bytes");
}
