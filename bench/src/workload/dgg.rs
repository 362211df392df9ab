//! DGG call graphs as compound multi-LoRA workloads.
