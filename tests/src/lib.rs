//! End-to-end tests across the fastlibra crates live in `tests/tests/`.
