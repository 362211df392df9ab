//! The engine core (sans-IO) and its drivers.

pub mod workload;
