//! DGG (arXiv 2412.19083) in Rust.
