//! The emulated device: HBM is a page arena in host memory, copies are `memcpy`, the compute
//! is the CPU model over the arena's pages.

use std::sync::Arc;

use fastlibra_alloc::NodeId;
use fastlibra_kernels::cpu::{CpuLora, CpuModel, KvArena, SeqInput};
use fastlibra_kernels::peft::PagedAdapter;
use rustc_hash::FxHashMap;

use super::{CopyDir, Device, DeviceSeq, LoraPages};
use crate::real::arena::{self, HostArena};
use crate::real::error::RealError;

/// Decoded adapters kept at most (then the cache starts over).
const DECODED_MAX: usize = 256;

/// See the module docs.
pub struct Emulated {
    model: Arc<CpuModel>,
    hbm: KvArena,
    host: HostArena,
    /// Adapter weights decoded from a LoRA node's HBM pages, by (node, adapter id, version):
    /// a node's pages do not change while it holds that version.
    decoded: FxHashMap<(NodeId, u32, u32), Arc<CpuLora>>,
    /// Transfers copied and not yet reported.
    done: Vec<u64>,
}

impl Emulated {
    /// Allocates both arenas once: `pages[0]` HBM pages and `pages[1]` host pages of the
    /// model's KV block of `block_tokens` tokens.
    pub fn new(
        model: Arc<CpuModel>,
        hbm_pages: u32,
        host_pages: u32,
        block_tokens: usize,
    ) -> Result<Emulated, RealError> {
        let page_floats = model.config().page_floats(block_tokens);
        Ok(Emulated {
            hbm: KvArena::new(hbm_pages as usize, page_floats, block_tokens)?,
            host: HostArena::new(host_pages, page_floats * 4),
            model,
            decoded: FxHashMap::default(),
            done: Vec::new(),
        })
    }

    /// The adapter weights of `lora`, decoded from its HBM pages (cached).
    fn lora_for(&mut self, lora: &LoraPages<'_>) -> Result<Arc<CpuLora>, RealError> {
        let source = lora.source;
        let key = (lora.node, lora.adapter.0, lora.adapter.1);
        if let Some(l) = self.decoded.get(&key) {
            return Ok(l.clone());
        }
        let pages: Vec<Vec<u8>> = lora
            .pages
            .iter()
            .map(|&p| arena::hbm_page(&self.hbm, p).to_vec())
            .collect();
        let paged = PagedAdapter {
            pages,
            layout: source.paged.layout.clone(),
        };
        let adapter = paged.to_adapter().map_err(|e| RealError::Adapter {
            name: source.name.clone(),
            source: Box::new(e),
        })?;
        let decoded = Arc::new(CpuLora::from_adapter(self.model.config(), &adapter)?);
        if self.decoded.len() >= DECODED_MAX {
            self.decoded.clear();
        }
        self.decoded.insert(key, decoded.clone());
        Ok(decoded)
    }
}

impl Device for Emulated {
    fn name(&self) -> String {
        super::EMULATED.into()
    }

    fn page_bytes(&self) -> usize {
        arena::hbm_page(&self.hbm, 0).len()
    }

    fn host_page(&self, page: u32) -> Result<&[u8], RealError> {
        self.host
            .get(page)
            .ok_or_else(|| out_of_range("host", page))
    }

    fn host_page_mut(&mut self, page: u32) -> Result<&mut [u8], RealError> {
        self.host
            .get_mut(page)
            .ok_or_else(|| out_of_range("host", page))
    }

    fn write_hbm_page(&mut self, page: u32, bytes: &[u8]) -> Result<(), RealError> {
        let dst = arena::hbm_page_mut(&mut self.hbm, page);
        if dst.len() != bytes.len() {
            return Err(out_of_range("HBM", page));
        }
        dst.copy_from_slice(bytes);
        Ok(())
    }

    fn start_copy(
        &mut self,
        transfer: u64,
        dir: CopyDir,
        _on_demand: bool,
        src: &[u32],
        dst: &[u32],
    ) -> Result<(), RealError> {
        match dir {
            CopyDir::ToHbm => arena::host_to_hbm(&self.host, &mut self.hbm, src, dst),
            CopyDir::ToHost => arena::hbm_to_host(&self.hbm, &mut self.host, src, dst),
        }
        self.done.push(transfer);
        Ok(())
    }

    fn poll_copies(&mut self, done: &mut Vec<u64>) -> Result<(), RealError> {
        done.append(&mut self.done);
        Ok(())
    }

    fn copies_busy(&self) -> bool {
        !self.done.is_empty()
    }

    fn forward(&mut self, seqs: &[DeviceSeq<'_>]) -> Result<Vec<Vec<f32>>, RealError> {
        let mut loras = Vec::with_capacity(seqs.len());
        for s in seqs {
            loras.push(self.lora_for(&s.lora)?);
        }
        let inputs: Vec<SeqInput<'_>> = seqs
            .iter()
            .zip(&loras)
            .map(|(s, l)| SeqInput {
                tokens: s.tokens,
                block_table: s.block_table,
                start_pos: s.start_pos,
                lora: Some(l),
            })
            .collect();
        Ok(self.model.forward_batch(&mut self.hbm, &inputs)?)
    }

    fn drain(&mut self, done: &mut Vec<u64>) -> Result<(), RealError> {
        self.poll_copies(done)
    }

    fn prefault(&mut self) {
        arena::prefault_hbm(&mut self.hbm);
        self.host.prefault();
    }

    fn check_invariants(&self) -> Result<(), String> {
        Ok(())
    }
}

fn out_of_range(tier: &str, page: u32) -> RealError {
    RealError::Runtime(format!("{tier} page {page} is outside its arena"))
}
