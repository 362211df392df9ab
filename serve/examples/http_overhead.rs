//! The HTTP front's overhead on time to first token, like for like: ONE serving runtime (the
//! settings and shard count of `fastlibra serve`'s defaults), and the same kind of request
//! sent to it alternately in process (`ServeBackend::submit`) and through the HTTP front
//! (`fastlibra_serve::start`, the function `fastlibra serve` runs) by a plain keep-alive
//! HTTP/1.1 client on a socket, one request at a time (light load). TTFT ends, in both paths,
//! where the stream's first chunk would: the first token that carries text (a completion's
//! stream sends no chunk for a token without), else the finish. Every prompt is distinct, so
//! no prefix-cache hit shortens a prefill.
//!
//! ```text
//! cargo run --release -p fastlibra-serve --example http_overhead -- [MODEL] [REQUESTS] [PROMPT_TOKENS] [SHARDS]
//! ```
//!
//! MODEL: a GGUF file or Hugging Face folder; default the SmolLM2 file of the model cache;
//! `tiny`: a tiny random model with a byte-level tokenizer, whose compute is so small that
//! TTFT is mostly the runtime's and the front's own work (and a loaded machine's noise in the
//! compute does not drown the difference).
//! REQUESTS: per path, default 200 (after 5 warm-up requests each). PROMPT_TOKENS: default 32.
//! SHARDS: default 1 (`fastlibra serve`'s default `--cores`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fastlibra_kernels::checkpoint::locate;
use fastlibra_kernels::cpu::{CpuModel, CpuModelConfig};
use fastlibra_kernels::sampling::SamplingParams;
use fastlibra_runtime::engine::PolicyKind;
use fastlibra_runtime::online::{
    GenerateRequest, ServeBackend, ServeOptions, TokenEvent, start, start_with,
};
use fastlibra_runtime::real::device::DeviceChoice;
use fastlibra_serve::FrontOptions;

type Error = Box<dyn std::error::Error>;

/// The options `fastlibra serve --model MODEL --cores SHARDS` starts the runtime with.
fn serve_defaults(model: PathBuf, shards: u32) -> ServeOptions {
    ServeOptions {
        model,
        served_model_name: Some("base".into()),
        lora_modules: Vec::new(),
        max_loras: 8,
        max_lora_rank: 64,
        max_cpu_loras: None,
        max_model_len: None,
        max_num_seqs: 64,
        max_waiting: 1024,
        device: DeviceChoice::Emulated,
        shards,
        tier_bytes: [256 << 20, 512 << 20, 1 << 30],
        spill_dir: None,
        policy: PolicyKind::Fastlibra,
    }
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let model = match args.first() {
        Some(path) => PathBuf::from(path),
        None => locate::smollm2().ok_or("no MODEL given and no SmolLM2 in the model cache")?,
    };
    let requests: usize = args.get(1).map_or(Ok(200), |s| s.parse())?;
    let prompt_tokens: u32 = args.get(2).map_or(Ok(32), |s| s.parse())?;
    let shards: u32 = args.get(3).map_or(Ok(1), |s| s.parse())?;
    let options = serve_defaults(model.clone(), shards);
    let backend: Arc<dyn ServeBackend> = if model == Path::new("tiny") {
        let tokenizer = fastlibra_serve::fuzz_entry::byte_tokenizer();
        let config = CpuModelConfig {
            vocab: tokenizer.vocab_size(),
            ..CpuModelConfig::tiny()
        };
        let model = CpuModel::random(config, 7)?;
        start_with(Arc::new(model), Arc::new(tokenizer), &options)?
    } else {
        start(&options)?
    };
    let front = FrontOptions {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..FrontOptions::default()
    };
    let server = fastlibra_serve::start(backend.clone(), front, false)?;
    let mut client = Client::connect(server.local_addr())?;
    let vocab = backend.model().tokenizer.vocab_size() as u32;
    let prompt = |i: usize| -> Vec<u32> {
        (0..prompt_tokens)
            .map(|t| 3 + (i as u32 * 7919 + t * 104_729) % (vocab - 3))
            .collect()
    };
    let (mut local, mut http) = (Vec::new(), Vec::new());
    for i in 0..requests + 5 {
        // Alternate which path goes first, so neither always follows the other.
        let (a, b) = (prompt(2 * i), prompt(2 * i + 1));
        let (l, h) = if i % 2 == 0 {
            let l = in_process(backend.as_ref(), a)?;
            (l, client.ttft(&b)?)
        } else {
            let h = client.ttft(&a)?;
            (in_process(backend.as_ref(), b)?, h)
        };
        if i >= 5 {
            local.push(l);
            http.push(h);
        }
    }
    // Each pair ran back to back, so its difference cancels most of the machine's drift.
    let mut paired: Vec<f64> = local
        .iter()
        .zip(&http)
        .map(|(l, h)| (h.as_secs_f64() - l.as_secs_f64()) * 1e3)
        .collect();
    paired.sort_by(f64::total_cmp);
    let paired_median_ms = paired[paired.len() / 2];
    let (l, h) = (Summary::of(&mut local), Summary::of(&mut http));
    println!(
        "model {}, {shards} shard(s), {prompt_tokens} prompt tokens, max_tokens 4, {requests} \
         requests per path, one at a time, alternating",
        model.display()
    );
    println!("in process:   TTFT {l}");
    println!("through HTTP: TTFT {h}");
    println!(
        "HTTP overhead: median {:+.3} ms, p90 {:+.3} ms; median of the paired differences \
         {paired_median_ms:+.3} ms",
        h.median_ms - l.median_ms,
        h.p90_ms - l.p90_ms
    );
    drop(client);
    server.stop();
    Ok(())
}

/// Median and spread of a sample, milliseconds.
struct Summary {
    median_ms: f64,
    p10_ms: f64,
    p90_ms: f64,
    min_ms: f64,
}

impl Summary {
    fn of(sample: &mut [Duration]) -> Summary {
        sample.sort();
        let ms = |p: f64| sample[((sample.len() as f64 - 1.0) * p).round() as usize];
        let ms = |p| ms(p).as_secs_f64() * 1e3;
        Summary {
            median_ms: ms(0.5),
            p10_ms: ms(0.1),
            p90_ms: ms(0.9),
            min_ms: ms(0.0),
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "median {:.3} ms, p10 {:.3} ms, p90 {:.3} ms, min {:.3} ms",
            self.median_ms, self.p10_ms, self.p90_ms, self.min_ms
        )
    }
}

fn params() -> SamplingParams {
    SamplingParams {
        max_tokens: 4,
        ..SamplingParams::greedy()
    }
}

/// TTFT of one request in process: `submit` to the first token with text.
fn in_process(backend: &dyn ServeBackend, prompt: Vec<u32>) -> Result<Duration, Error> {
    let request = GenerateRequest {
        adapter: None,
        prompt,
        params: params(),
    };
    let t0 = Instant::now();
    let mut stream = backend.submit(request)?;
    let mut first = None;
    futures_lite::future::block_on(async {
        while let Some(event) = stream.next().await {
            // The stream's first chunk: the first token with text, else the finish chunk.
            let chunk = match &event {
                TokenEvent::Token(step) => !step.text.is_empty(),
                TokenEvent::Done { .. } => true,
                TokenEvent::Failed { .. } => false,
            };
            if chunk && first.is_none() {
                first = Some(t0.elapsed());
            }
        }
    });
    first.ok_or_else(|| "the request failed".into())
}

/// A keep-alive HTTP/1.1 client on one socket.
struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Result<Client, Error> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Client {
            reader: BufReader::new(stream),
        })
    }

    /// TTFT of one streamed completion: the request's first byte sent to the first `data:`
    /// chunk received; then reads the stream to its end.
    fn ttft(&mut self, prompt: &[u32]) -> Result<Duration, Error> {
        let body = serde_json::json!({
            "model": "base", "prompt": prompt, "max_tokens": 4, "temperature": 0,
            "stream": true,
        })
        .to_string();
        let request = format!(
            "POST /v1/completions HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let t0 = Instant::now();
        self.reader.get_mut().write_all(request.as_bytes())?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        if !line.starts_with("HTTP/1.1 200") {
            return Err(format!("answer: {line}").into());
        }
        while line != "\r\n" {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                return Err("the connection closed in the headers".into());
            }
        }
        let mut first = None;
        loop {
            let chunk = self.chunk()?;
            if chunk.is_empty() {
                break; // the last chunk
            }
            if first.is_none() && chunk.windows(5).any(|w| w == b"data:") {
                first = Some(t0.elapsed());
            }
        }
        first.ok_or_else(|| "no data chunk".into())
    }

    /// One chunk of a chunked body (empty: the last).
    fn chunk(&mut self) -> Result<Vec<u8>, Error> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let size = usize::from_str_radix(line.trim(), 16)?;
        let mut data = vec![0; size + 2];
        self.reader.read_exact(&mut data)?;
        data.truncate(size);
        Ok(data)
    }
}
