//! Memory system.
