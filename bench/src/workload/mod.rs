//! Workload generators: synthetic chatbot, translation and agent workloads, and DGG call graphs.
