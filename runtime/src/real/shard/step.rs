//! The shard's compute: a step of the engine run by the device over the HBM pages.

use fastlibra_alloc::Tier;
use rustc_hash::FxHashMap;

use super::{Clock, Shard, Track, engine_err};
use crate::engine::StepCmd;
use crate::real::device::{DeviceSeq, LoraPages};
use crate::real::error::RealError;

impl Shard {
    pub(super) fn run_step(&mut self, step: StepCmd, clock: &Clock) -> Result<(), RealError> {
        let seqs = self.engine.step_inputs();
        let vocab = self.vocab;
        let tokens: Vec<Vec<u32>> = seqs
            .iter()
            .map(|s| s.tokens.iter().map(|t| t % vocab).collect())
            .collect();
        // Each sequence's adapter: its LoRA node's HBM pages and the source of its version.
        let tree = self.engine.tree();
        let mut lora_pages = Vec::with_capacity(seqs.len());
        for seq in &seqs {
            let key = (seq.adapter.id, seq.adapter.version);
            let source = self
                .sources
                .get(&key)
                .ok_or_else(|| RealError::Runtime(format!("no weights for adapter {key:?}")))?;
            let view = tree.node(seq.lora_node).map_err(engine_err)?;
            if view.tier() != Tier::Hbm {
                return Err(RealError::Runtime(format!(
                    "adapter {key:?} is computed with but sits in {:?}",
                    view.tier()
                )));
            }
            let pages: Vec<u32> = tree
                .pages(seq.lora_node, Tier::Hbm)
                .map_err(engine_err)?
                .collect();
            lora_pages.push((key, source, pages));
        }
        let inputs: Vec<DeviceSeq<'_>> = seqs
            .iter()
            .zip(&tokens)
            .zip(&lora_pages)
            .map(|((s, t), (key, source, pages))| DeviceSeq {
                tokens: t,
                block_table: &s.block_table,
                start_pos: s.start_pos as usize,
                lora: LoraPages {
                    node: s.lora_node,
                    adapter: *key,
                    pages,
                    source,
                },
            })
            .collect();
        let started = std::time::Instant::now();
        let logits = self.device.forward(&inputs)?;
        self.forward_ns += started.elapsed().as_nanos() as u64;
        drop(inputs);
        drop(lora_pages);
        let mut sampled: FxHashMap<u64, u32> = FxHashMap::default();
        let mut ending = Vec::new();
        for (seq, logits) in seqs.iter().zip(&logits) {
            let track = self.tracks.entry(seq.request).or_insert(Track {
                max_new: 1,
                first_start: None,
                sampled: 0,
            });
            let first_start = *track.first_start.get_or_insert(seq.start_pos);
            if !seq.samples {
                continue;
            }
            track.sampled += 1;
            // A request that reused cached KV: its first token, and its last token (which
            // also reads the KV it decoded into its own pages).
            let check = first_start > 0 && (track.sampled == 1 || track.sampled == track.max_new);
            let token = match &mut self.chooser {
                Some(chooser) => {
                    let (token, ends) = chooser.choose(seq.request, logits);
                    if ends {
                        ending.push(seq.request);
                    }
                    token
                }
                None => argmax(logits),
            };
            sampled.insert(seq.request, token);
            if check && self.verifier.is_some() {
                // Checked after the run, so recomputing does not slow the serving path.
                let source = self.sources[&(seq.adapter.id, seq.adapter.version)].clone();
                let context = self.engine.step_context(seq.request).unwrap_or_default();
                self.verify_jobs
                    .push((context.to_vec(), logits.clone(), source));
            }
        }
        // One token per sampler, in the step's order (a request that left meanwhile gets a
        // placeholder the engine discards).
        let out: Vec<u32> = step
            .samples
            .iter()
            .map(|r| sampled.get(r).copied().unwrap_or(0))
            .collect();
        super::timed(&mut self.engine_call_ns_max, || {
            self.engine
                .handle_step_done_ending(clock.now_ns(), step.id, &out, &ending)
        })?;
        Ok(())
    }
}

/// The most likely next token (greedy sampling: deterministic, so runs can be compared).
fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}
