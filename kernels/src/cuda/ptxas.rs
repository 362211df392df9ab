//! Reading `ptxas -v` output: registers, shared memory, stack and local-memory spills per
//! kernel, so the compile check can print a table and fail on any spill.

/// What `ptxas -v` reports for one kernel.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct KernelStats {
    /// The entry function.
    pub name: String,
    /// Registers per thread.
    pub registers: u32,
    /// Bytes of static shared memory.
    pub smem_bytes: u32,
    /// Bytes of stack frame.
    pub stack_bytes: u32,
    /// Bytes stored to local memory by spills.
    pub spill_store_bytes: u32,
    /// Bytes loaded from local memory by spills.
    pub spill_load_bytes: u32,
}

impl KernelStats {
    /// Whether the kernel spills registers to local memory.
    pub fn spills(&self) -> bool {
        self.spill_store_bytes > 0 || self.spill_load_bytes > 0
    }
}

/// The number just before `unit` in `line` (`"40 registers"` → 40).
fn number_before(line: &str, unit: &str) -> Option<u32> {
    let end = line.find(unit)?;
    line[..end].split_whitespace().last()?.parse().ok()
}

/// Parses the `ptxas -v` log of one PTX file into one entry per kernel, in log order.
/// Lines it does not know are skipped; a kernel whose numbers are missing keeps zeros.
pub fn parse_ptxas_log(log: &str) -> Vec<KernelStats> {
    let mut kernels: Vec<KernelStats> = Vec::new();
    for line in log.lines() {
        if let Some(rest) = line.split("Compiling entry function '").nth(1) {
            let name = rest.split('\'').next().unwrap_or_default().to_string();
            kernels.push(KernelStats {
                name,
                ..KernelStats::default()
            });
            continue;
        }
        let Some(k) = kernels.last_mut() else {
            continue;
        };
        if line.contains("spill stores") {
            k.stack_bytes = number_before(line, "bytes stack frame").unwrap_or(0);
            k.spill_store_bytes = number_before(line, "bytes spill stores").unwrap_or(0);
            k.spill_load_bytes = number_before(line, "bytes spill loads").unwrap_or(0);
        } else if line.contains("registers") {
            k.registers = number_before(line, "registers").unwrap_or(0);
            k.smem_bytes = number_before(line, "bytes smem").unwrap_or(0);
        }
    }
    kernels
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'gemm' for 'sm_90'
ptxas info    : Function properties for gemm
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 40 registers, 8320 bytes smem, 388 bytes cmem[0]
ptxas info    : Compiling entry function 'paged_attention' for 'sm_90'
ptxas info    : Function properties for paged_attention
    16 bytes stack frame, 12 bytes spill stores, 8 bytes spill loads
ptxas info    : Used 255 registers, 2080 bytes smem, 424 bytes cmem[0]
";

    #[test]
    fn reads_registers_smem_and_spills_per_kernel() {
        let k = parse_ptxas_log(LOG);
        assert_eq!(k.len(), 2);
        assert_eq!(
            k[0],
            KernelStats {
                name: "gemm".into(),
                registers: 40,
                smem_bytes: 8320,
                stack_bytes: 0,
                spill_store_bytes: 0,
                spill_load_bytes: 0,
            }
        );
        assert!(!k[0].spills());
        assert_eq!((k[1].registers, k[1].stack_bytes), (255, 16));
        assert_eq!((k[1].spill_store_bytes, k[1].spill_load_bytes), (12, 8));
        assert!(k[1].spills());
    }

    #[test]
    fn ignores_noise_and_empty_logs() {
        assert!(parse_ptxas_log("").is_empty());
        assert!(parse_ptxas_log("ptxas info : Used 3 registers\nwarning").is_empty());
    }
}
