//! Workload generators: synthetic chatbot, translation and agent workloads, and DGG call graphs.
//! Each generator returns a [`fastlibra_runtime::workload::Workload`].

pub mod dgg;
