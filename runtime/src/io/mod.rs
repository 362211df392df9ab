//! The NVMe tier's page file: real bytes over io_uring (work in progress).
