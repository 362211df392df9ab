//! Tests of the front over a fake runtime.
