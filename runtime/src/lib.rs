//! The engine core (sans-IO) and its drivers.

pub mod engine;
pub mod io;
pub mod online;
pub mod outcome;
pub mod real;
pub mod sim;
pub mod workload;
