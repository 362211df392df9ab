//! DGG call graphs as compound multi-LoRA workloads (DESIGN §7).
//!
//! An *application* is a set of call graphs with frequencies (`num`): a service of a handler
//! output folder, a cluster of a generator output folder, or one of the built-in services of
//! `fastlibra_dgg::builtin` when no folder is given. A user query arrives (Poisson, or Gamma
//! gaps when `burst_cv2 > 1`), picks an application by its traffic and a call graph by `num`,
//! and runs it top-down from `USER`:
//!
//! - A call to an LLM-backed microservice (label `normal`, `relay` or `blackhole`, reached by
//!   `rpc` or `http`) is a session of that microservice's LoRA adapter (adapter name:
//!   `<application>/<microservice without _func…>`). An edge of weight *w* is *w* turns of one
//!   conversation: each later turn extends the history, so its KV can be reused.
//! - The first turn starts with the system prompt of the interface called (`_func<k>`, or
//!   `func0` without one): fixed per adapter and interface, shared by every call, so prefix KV
//!   is reusable across queries.
//! - A call starts after its caller's last turn has answered (`USER`'s calls at the arrival).
//!   A caller's calls run in parallel, in the order of the graph's edges, except that calls to
//!   `Memcached`/`database` (or by `mc`/`db`) happen in that order and delay every later call
//!   of the same caller by `cache_delay_us` / `db_delay_us` per repeat. Any other call (e.g.
//!   `mq`, or a node without a label) costs `other_delay_us` and its own calls are anchored
//!   to the caller's.
//! - A microservice's calls are taken from its first appearance only (a node expands once).

use std::collections::BTreeMap;
use std::path::Path;

use fastlibra_dgg::graph::{USER, split_func};
use fastlibra_dgg::{CallGraph, DggError, Label, builtin, dataset};
use fastlibra_runtime::workload::{AdapterSpec, SessionSpec, SessionStart, TurnSpec, Workload};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::arrivals::ArrivalProcess;
use super::sample::{LengthDist, Stream, stream_rng, uniform_u32};
use super::tokens::random_tokens;

/// Name of this generator in reports.
pub const NAME: &str = "dgg";

/// Most queries one workload holds.
pub const MAX_QUERIES: u64 = 200_000;

/// Parameters of the DGG workload. Every field has a documented default.
#[derive(Clone, Debug, PartialEq)]
pub struct DggWorkloadParams {
    /// Mean user queries per second. Default 2.
    pub rate_per_s: f64,
    /// Length of the arrival window, seconds. Default 120.
    pub duration_s: f64,
    /// Squared coefficient of variation of the gaps between queries: 1 is Poisson, larger is
    /// burstier (Gamma gaps). Default 1.
    pub burst_cv2: f64,
    /// System prompt length of each (adapter, interface), uniform in this range, tokens.
    /// Default 256–1024.
    pub system_prompt_tokens: (u32, u32),
    /// New user tokens of each turn. Default log-normal, mean 128, sigma 0.8, cap 4096.
    pub prompt_tokens: LengthDist,
    /// Generated tokens of each turn. Default log-normal, mean 96, sigma 0.8, cap 1024.
    pub output_tokens: LengthDist,
    /// Adapter ranks, round-robin over adapters sorted by name. Default `[32, 64]`.
    pub ranks: Vec<u32>,
    /// Delay between repeated calls of one edge (the caller thinking), microseconds. Default 0.
    pub repeat_think_us: u64,
    /// Cost of one `Memcached` call, microseconds. Default 500.
    pub cache_delay_us: u64,
    /// Cost of one `database` call, microseconds. Default 2,000.
    pub db_delay_us: u64,
    /// Cost of any other call that runs no model (e.g. `mq`), microseconds. Default 1,000.
    pub other_delay_us: u64,
    /// Tenants per application: each tenant runs its own copy of every application with its own
    /// adapters (`<application>@t<k>/…`), as when every customer fine-tunes the same compound
    /// application. Tenant *k* gets a share ∝ `1/(k+1)^tenant_zipf` of its application's
    /// traffic. Default 1 (no replication).
    pub tenants: u32,
    /// Zipf exponent of tenant popularity. Default 1.0.
    pub tenant_zipf: f64,
}

impl Default for DggWorkloadParams {
    fn default() -> Self {
        DggWorkloadParams {
            rate_per_s: 2.0,
            duration_s: 120.0,
            burst_cv2: 1.0,
            system_prompt_tokens: (256, 1024),
            prompt_tokens: LengthDist {
                mean: 128.0,
                sigma: 0.8,
                max: 4096,
            },
            output_tokens: LengthDist {
                mean: 96.0,
                sigma: 0.8,
                max: 1024,
            },
            ranks: vec![32, 64],
            repeat_think_us: 0,
            cache_delay_us: 500,
            db_delay_us: 2_000,
            other_delay_us: 1_000,
            tenants: 1,
            tenant_zipf: 1.0,
        }
    }
}

/// Errors of the DGG workload.
#[derive(Debug, thiserror::Error)]
pub enum DggWorkloadError {
    /// The call graphs could not be loaded.
    #[error(transparent)]
    Dgg(#[from] DggError),
    /// A parameter makes no sense.
    #[error("dgg workload parameter `{field}` must be {requirement}, got {value}")]
    InvalidParam {
        /// The parameter.
        field: &'static str,
        /// What it must be.
        requirement: &'static str,
        /// What it was.
        value: String,
    },
    /// No LLM call would be made.
    #[error("dgg workload has no session: {0}")]
    Empty(String),
}

impl DggWorkloadParams {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), DggWorkloadError> {
        let bad = |field, requirement, value: String| {
            Err(DggWorkloadError::InvalidParam {
                field,
                requirement,
                value,
            })
        };
        if !(self.rate_per_s.is_finite() && self.rate_per_s > 0.0) {
            return bad("rate_per_s", "positive", self.rate_per_s.to_string());
        }
        if !(self.duration_s.is_finite() && self.duration_s > 0.0) {
            return bad("duration_s", "positive", self.duration_s.to_string());
        }
        if (self.rate_per_s * self.duration_s) as u64 > MAX_QUERIES {
            return bad(
                "rate_per_s × duration_s",
                "at most 200000 queries",
                (self.rate_per_s * self.duration_s).to_string(),
            );
        }
        if !(self.burst_cv2.is_finite() && self.burst_cv2 > 0.0) {
            return bad("burst_cv2", "positive", self.burst_cv2.to_string());
        }
        let (lo, hi) = self.system_prompt_tokens;
        if lo == 0 || lo > hi {
            return bad(
                "system_prompt_tokens",
                "1 <= min <= max",
                format!("{lo}..{hi}"),
            );
        }
        if self.tenants == 0 || self.tenants > 10_000 {
            return bad("tenants", "in 1..=10000", self.tenants.to_string());
        }
        if !(self.tenant_zipf.is_finite() && self.tenant_zipf >= 0.0) {
            return bad(
                "tenant_zipf",
                "finite and >= 0",
                self.tenant_zipf.to_string(),
            );
        }
        if self.ranks.is_empty() || self.ranks.contains(&0) {
            return bad(
                "ranks",
                "a non-empty list of positive ranks",
                format!("{:?}", self.ranks),
            );
        }
        let lengths = [
            ("prompt_tokens", &self.prompt_tokens),
            ("output_tokens", &self.output_tokens),
        ];
        for (field, d) in lengths {
            if !(d.mean.is_finite()
                && d.mean >= 1.0
                && d.sigma.is_finite()
                && d.sigma >= 0.0
                && d.max > 0)
            {
                return bad(field, "mean >= 1, sigma >= 0, cap > 0", format!("{d:?}"));
            }
        }
        Ok(())
    }
}

/// An application: call graphs with their weights.
struct App {
    name: String,
    weight: u64,
    graphs: Vec<CallGraph>,
}

fn load_apps(graphs: Option<&Path>) -> Result<Vec<App>, DggWorkloadError> {
    let Some(dir) = graphs else {
        return Ok(builtin::services()
            .into_iter()
            .map(|s| App {
                name: s.name.to_string(),
                weight: s.graphs.iter().map(|g| g.num).sum(),
                graphs: s.graphs,
            })
            .collect());
    };
    if dir.join(dataset::SERVICE_INFO).is_file() {
        let ds = dataset::load_dataset(dir, None)?;
        return Ok(ds
            .services
            .into_iter()
            .map(|s| App {
                name: s.info.service,
                weight: s.info.top90_trace_num,
                graphs: s.graphs,
            })
            .collect());
    }
    let mut warnings = Vec::new();
    let clusters = dataset::load_clusters(dir, &mut warnings)?;
    Ok(clusters
        .into_iter()
        .map(|(k, graphs)| App {
            name: format!("type{k}"),
            weight: graphs.iter().map(|g| g.num).sum(),
            graphs,
        })
        .collect())
}

/// Replicates every application for `tenants` tenants with Zipf-distributed shares of its
/// traffic (weights scaled by 10^6 / (k+1)^s, so they stay integers).
fn with_tenants(apps: Vec<App>, tenants: u32, zipf: f64) -> Vec<App> {
    if tenants <= 1 {
        return apps;
    }
    apps.into_iter()
        .flat_map(|app| {
            (0..tenants).map(move |k| {
                let share = 1e6 / f64::from(k + 1).powf(zipf);
                App {
                    name: format!("{}@t{k}", app.name),
                    weight: ((app.weight as f64) * share).round().max(1.0) as u64,
                    graphs: app.graphs.clone(),
                }
            })
        })
        .collect()
}

/// Whether a call to a node with `label` by `rpctype` runs a model.
fn is_llm(label: Option<Label>, rpctype: &str) -> bool {
    matches!(label, Some(Label::Normal | Label::Relay | Label::Blackhole))
        && matches!(rpctype, "rpc" | "http")
}

/// A stable 64-bit hash (FNV-1a) of a name, to derive per-adapter draws from the seed.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

struct Builder<'a> {
    params: &'a DggWorkloadParams,
    seed: u64,
    adapters: BTreeMap<String, u32>,
    prompts: BTreeMap<(u32, String), Vec<u32>>,
    sessions: Vec<SessionSpec>,
    rng: ChaCha8Rng,
}

/// Where a call waits: the start of the query, or a session's last turn.
#[derive(Clone, Copy)]
enum Anchor {
    At(u64),
    After { session: u32, turn: u32 },
}

impl Builder<'_> {
    fn system_prompt(&mut self, adapter: u32, func: &str) -> Vec<u32> {
        let (lo, hi) = self.params.system_prompt_tokens;
        let key = (adapter, func.to_string());
        let seed = self.seed ^ fnv(&format!("{adapter}/{func}"));
        self.prompts
            .entry(key)
            .or_insert_with(|| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let len = uniform_u32(&mut rng, lo, hi);
                random_tokens(&mut rng, len)
            })
            .clone()
    }

    fn start(anchor: Anchor, delay_ns: u64) -> SessionStart {
        match anchor {
            Anchor::At(t) => SessionStart::At(t + delay_ns),
            Anchor::After { session, turn } => SessionStart::After {
                session,
                turn,
                delay_ns,
            },
        }
    }

    /// Adds the sessions of one query on graph `g` of application `app`.
    fn query(&mut self, app: &str, g: &CallGraph, arrival_ns: u64) {
        let mut calls: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, e) in g.edges.iter().enumerate() {
            calls.entry(e.source.as_str()).or_default().push(i);
        }
        let mut expanded: BTreeMap<&str, ()> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([(USER, Anchor::At(arrival_ns), 0u64)]);
        expanded.insert(USER, ());
        while let Some((node, anchor, base_delay)) = queue.pop_front() {
            let mut delay_ns = base_delay;
            for &i in calls.get(node).map(Vec::as_slice).unwrap_or(&[]) {
                let e = &g.edges[i];
                let label = g.label_of(&e.target);
                let next = if is_llm(label, &e.rpctype) {
                    let s = self.llm_call(
                        app,
                        e.target.as_str(),
                        e.weight,
                        Self::start(anchor, delay_ns),
                    );
                    Some((
                        Anchor::After {
                            session: s,
                            turn: e.weight.max(1) - 1,
                        },
                        0,
                    ))
                } else {
                    let unit = match (label, e.rpctype.as_str()) {
                        (Some(Label::Memcached), _) | (_, "mc") => self.params.cache_delay_us,
                        (Some(Label::Database), _) | (_, "db") => self.params.db_delay_us,
                        _ => self.params.other_delay_us,
                    };
                    let cost = unit * 1_000 * u64::from(e.weight.max(1));
                    let storage = matches!(label, Some(Label::Memcached | Label::Database))
                        || matches!(e.rpctype.as_str(), "mc" | "db");
                    if storage {
                        delay_ns += cost;
                        None
                    } else {
                        Some((anchor, delay_ns + cost))
                    }
                };
                let fresh = next.is_some() && expanded.insert(e.target.as_str(), ()).is_none();
                if let (true, Some((a, d))) = (fresh, next) {
                    queue.push_back((e.target.as_str(), a, d));
                }
            }
        }
    }

    fn llm_call(&mut self, app: &str, target: &str, weight: u32, start: SessionStart) -> u32 {
        let (ms, func) = split_func(target);
        let adapter = self
            .adapters
            .get(&format!("{app}/{ms}"))
            .copied()
            .unwrap_or(0);
        let mut turns = Vec::with_capacity(weight.max(1) as usize);
        for t in 0..weight.max(1) {
            let mut tokens = if t == 0 {
                self.system_prompt(adapter, func.unwrap_or("func0"))
            } else {
                Vec::new()
            };
            let n = self.params.prompt_tokens.sample(&mut self.rng);
            tokens.extend(random_tokens(&mut self.rng, n));
            turns.push(TurnSpec {
                think_ns: if t == 0 {
                    0
                } else {
                    self.params.repeat_think_us * 1_000
                },
                tokens,
                max_new_tokens: self.params.output_tokens.sample(&mut self.rng),
            });
        }
        self.sessions.push(SessionSpec {
            adapter,
            start,
            turns,
        });
        (self.sessions.len() - 1) as u32
    }
}

/// The adapters every application may call: `<app>/<microservice>`, sorted.
fn adapter_names(apps: &[App]) -> Vec<String> {
    let mut names: Vec<String> = apps
        .iter()
        .flat_map(|a| {
            a.graphs.iter().flat_map(move |g| {
                g.edges
                    .iter()
                    .filter(|e| is_llm(g.label_of(&e.target), &e.rpctype))
                    .map(move |e| format!("{}/{}", a.name, split_func(&e.target).0))
            })
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Picks an index by weight.
fn pick(rng: &mut ChaCha8Rng, weights: &[u64]) -> usize {
    let total: u64 = weights.iter().sum();
    if total == 0 {
        return rng.random_range(0..weights.len().max(1));
    }
    let mut x = rng.random_range(0..total);
    for (i, &w) in weights.iter().enumerate() {
        if x < w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

/// The DGG workload: queries over the call graphs in `graphs` (a handler or generator output
/// folder) or, without a folder, over the built-in services. The same inputs and seed give the
/// same workload.
pub fn workload(
    graphs: Option<&Path>,
    params: &DggWorkloadParams,
    seed: u64,
) -> Result<Workload, DggWorkloadError> {
    params.validate()?;
    let apps = with_tenants(load_apps(graphs)?, params.tenants, params.tenant_zipf);
    let names = adapter_names(&apps);
    if names.is_empty() {
        return Err(DggWorkloadError::Empty(
            "no call graph calls an LLM-backed microservice".into(),
        ));
    }
    let adapters: Vec<AdapterSpec> = names
        .iter()
        .enumerate()
        .map(|(i, n)| AdapterSpec {
            name: n.clone(),
            rank: params.ranks[i % params.ranks.len()],
        })
        .collect();
    let process = if params.burst_cv2 > 1.0 {
        ArrivalProcess::Gamma {
            rate_per_s: params.rate_per_s,
            cv2: params.burst_cv2,
        }
    } else {
        ArrivalProcess::Poisson {
            rate_per_s: params.rate_per_s,
        }
    };
    let duration_ns = (params.duration_s * 1e9) as u64;
    let arrivals = process.times_ns(
        &mut stream_rng(seed, Stream::Arrivals),
        duration_ns,
        MAX_QUERIES as usize,
    );
    let mut choose = stream_rng(seed, Stream::Popularity);
    let mut b = Builder {
        params,
        seed,
        adapters: names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as u32))
            .collect(),
        prompts: BTreeMap::new(),
        sessions: Vec::new(),
        rng: stream_rng(seed, Stream::Tokens),
    };
    let app_weights: Vec<u64> = apps.iter().map(|a| a.weight).collect();
    for t in arrivals {
        let app = &apps[pick(&mut choose, &app_weights)];
        let nums: Vec<u64> = app.graphs.iter().map(|g| g.num).collect();
        let g = &app.graphs[pick(&mut choose, &nums)];
        b.query(&app.name, g, t);
    }
    if b.sessions.is_empty() {
        return Err(DggWorkloadError::Empty(format!(
            "no query arrived in {} s at {} per second",
            params.duration_s, params.rate_per_s
        )));
    }
    Ok(Workload {
        name: NAME.to_string(),
        adapters,
        sessions: b.sessions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_replicate_adapters_with_skewed_traffic() {
        let one = workload(None, &DggWorkloadParams::default(), 5).expect("built-in");
        let p = DggWorkloadParams {
            tenants: 4,
            rate_per_s: 20.0,
            ..DggWorkloadParams::default()
        };
        let four = workload(None, &p, 5).expect("built-in");
        assert_eq!(four.adapters.len(), 4 * one.adapters.len());
        assert!(four.adapters.iter().all(|a| a.name.contains("@t")));
        // Tenant 0 gets the largest share of sessions (Zipf 1.0).
        let count = |k: &str| {
            four.sessions
                .iter()
                .filter(|s| four.adapters[s.adapter as usize].name.contains(k))
                .count()
        };
        assert!(count("@t0/") > count("@t3/"));
        let bad = DggWorkloadParams {
            tenants: 0,
            ..DggWorkloadParams::default()
        };
        assert!(workload(None, &bad, 5).is_err());
    }

    #[test]
    fn builtin_workload_is_reproducible_and_well_formed() {
        let p = DggWorkloadParams {
            duration_s: 30.0,
            ..DggWorkloadParams::default()
        };
        let w = workload(None, &p, 3).unwrap();
        assert_eq!(w, workload(None, &p, 3).unwrap());
        assert_ne!(w, workload(None, &p, 4).unwrap());
        assert!(w.adapters.iter().any(|a| a.rank == 32) && w.adapters.iter().any(|a| a.rank == 64));
        for (i, s) in w.sessions.iter().enumerate() {
            assert!((s.adapter as usize) < w.adapters.len());
            assert!(!s.turns.is_empty());
            if let SessionStart::After { session, turn, .. } = s.start {
                assert!((session as usize) < i);
                assert!((turn as usize) < w.sessions[session as usize].turns.len());
            }
        }
        // Repeated calls are multi-turn sessions (code_agent's coder is called 3 times).
        assert!(w.sessions.iter().any(|s| s.turns.len() == 3));
        // A cache call delays the calls after it (rag_chat: retriever → cache, then db).
        assert!(
            w.sessions
                .iter()
                .any(|s| matches!(s.start, SessionStart::After { .. }))
        );
    }

    #[test]
    fn system_prompts_are_shared_per_interface() {
        let w = workload(None, &DggWorkloadParams::default(), 1).unwrap();
        let mut first: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        let len = DggWorkloadParams::default().system_prompt_tokens.0 as usize;
        let mut shared = 0;
        for s in &w.sessions {
            let head = s.turns[0].tokens[..len].to_vec();
            if let Some(prev) = first.get(&s.adapter) {
                shared += usize::from(*prev == head);
            } else {
                first.insert(s.adapter, head);
            }
        }
        assert!(shared > 0);
    }

    #[test]
    fn bad_parameters_and_folders_are_errors() {
        let p = DggWorkloadParams {
            rate_per_s: 0.0,
            ..DggWorkloadParams::default()
        };
        assert!(
            workload(None, &p, 0)
                .unwrap_err()
                .to_string()
                .contains("rate_per_s")
        );
        let err = workload(
            Some(Path::new("/nonexistent-dgg-folder")),
            &DggWorkloadParams::default(),
            0,
        );
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("nonexistent-dgg-folder")
        );
    }

    #[test]
    fn shared_sample_data_maps_to_sessions() {
        let data = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/dgg-sample-data"
        ));
        if !data.join("service_info.csv").is_file() {
            println!("skipped: {} is absent", data.display());
            return;
        }
        let p = DggWorkloadParams {
            duration_s: 20.0,
            ..DggWorkloadParams::default()
        };
        let real = workload(Some(data), &p, 1).unwrap();
        let generated = workload(Some(&data.join("DGG_gen_cgs/20250109_150211")), &p, 1).unwrap();
        for w in [&real, &generated] {
            assert!(w.sessions.len() >= 20, "{}", w.sessions.len());
            assert!(w.adapters.len() > 10, "{}", w.adapters.len());
        }
        println!(
            "real: {} adapters, {} sessions",
            real.adapters.len(),
            real.sessions.len()
        );
    }
}
