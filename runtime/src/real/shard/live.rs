//! A shard serving live requests: a sampler per request instead of greedy decoding, requests
//! cancelled mid-flight, adapters added and removed at run time.

use std::sync::Arc;

use super::{Shard, check_layout};
use crate::real::adapters::SourceAdapter;
use crate::real::error::RealError;

/// Chooses each sampled token of a step from its logits (the serving runtime's per-request
/// sampling, stop conditions and streaming). Without one a shard decodes greedily.
pub trait TokenChooser {
    /// The next token of `request` from its last-position logits, and whether the request
    /// ends with it (a stop token or string, `max_tokens`, or a sampling failure).
    fn choose(&mut self, request: u64, logits: &[f32]) -> (u32, bool);
}

impl Shard {
    /// Wall time spent in forward passes so far, ns (the rest of a pump is the engine's
    /// and the copies').
    pub fn forward_ns(&self) -> u64 {
        self.forward_ns
    }

    /// NVMe counters so far.
    pub fn io_counters(&self) -> super::IoCounters {
        self.io_counters
    }

    /// Samples with `chooser` from now on.
    pub fn set_chooser(&mut self, chooser: Box<dyn TokenChooser>) {
        self.chooser = Some(chooser);
    }

    /// Cancels request `id`: it leaves the engine at once with its pins released. False if
    /// the shard does not hold it.
    pub fn cancel(&mut self, now_ns: u64, id: u64) -> bool {
        self.tracks.remove(&id);
        self.engine.cancel_request(now_ns, id)
    }

    /// Registers a new adapter (a new id) and writes its pages into the tier the engine put
    /// it in. Returns its id, which is the same on every shard that registers the same
    /// adapters in the same order.
    pub fn add_adapter(
        &mut self,
        now_ns: u64,
        source: Arc<SourceAdapter>,
    ) -> Result<u32, RealError> {
        check_layout(self.device_choice, &source)?;
        let page_bytes = self.device.page_bytes();
        if source.paged.layout.page_bytes != page_bytes {
            return Err(RealError::Config(format!(
                "adapter {} is paged in {} B pages; the model's KV block is {page_bytes} B",
                source.name, source.paged.layout.page_bytes
            )));
        }
        let (id, registered, tier) = self.engine.add_adapter(now_ns, source.info())?;
        self.write_adapter(registered.node, tier, &source.paged)?;
        self.sources
            .insert((id, registered.adapter.version), source.clone());
        debug_assert_eq!(self.current.len(), id as usize, "adapter ids are dense");
        self.current.push(source);
        Ok(id)
    }

    /// Drops adapter `id` with its KV once no request of it is held and nothing of it is
    /// pinned or moving; false means "not yet" (call again later).
    pub fn remove_adapter(&mut self, now_ns: u64, id: u32) -> bool {
        let gone = self.engine.remove_adapter(now_ns, id);
        if gone {
            self.sources.retain(|&(a, _), _| a != id);
        }
        gone
    }
}
