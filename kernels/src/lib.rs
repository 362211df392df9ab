//! The device layer.
