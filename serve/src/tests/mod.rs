//! Tests of the front over a small fake runtime ([`fake::FakeBackend`], test code only), through
//! real HTTP on 127.0.0.1 with a free port.

mod api;
mod bad_input;
mod client;
mod failure;
mod fake;
mod lifecycle;
