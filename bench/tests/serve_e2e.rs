//! `fastlibra serve` end to end: the real binary on 127.0.0.1 with a free port, the real
//! SmolLM2 model and two adapters, driven by the official `openai` Python client, curl and
//! `prometheus_client` (`tests/serve/e2e.py`), then stopped by SIGTERM (exit status 0); and
//! greedy output through the server compared with `fastlibra generate`'s for the same model,
//! adapter, prompt and token budget. Skips with a message when the model, the reference
//! adapter or the venv is missing, and fails then under `FASTLIBRA_REQUIRE_MODEL=1`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use fastlibra_kernels::checkpoint::locate;
use serde_json::{Value, json};
use support::serve::Server;

mod support;

fn inputs() -> Option<(PathBuf, PathBuf, PathBuf)> {
    let model = locate::smollm2();
    let peft = locate::cache_dir().map(|c| c.join("refs/lora/peft-r8"));
    let python = locate::venv_python();
    match (
        model,
        peft.filter(|p| p.join("adapter_config.json").is_file()),
        python,
    ) {
        (Some(m), Some(p), Some(py)) => Some((m, p, py)),
        missing => {
            let msg = format!(
                "serve_e2e: needs the SmolLM2 model (scripts/fetch-model.sh), the reference \
                 adapter (scripts/refs/all.sh) and the venv (scripts/py-env.sh): {missing:?}"
            );
            assert!(!locate::model_required(), "{msg}");
            eprintln!("skipped: {msg}");
            None
        }
    }
}

/// Starts `fastlibra serve` with adapters `a` and `b` (both `peft`).
fn start(model: &Path, peft: &Path) -> Server {
    let args = ["--max-model-len", "512", "--lora-modules"].map(String::from);
    let adapters = ["a", "b"].map(|n| format!("{n}={}", peft.display()));
    Server::start(
        model,
        &[args.to_vec(), adapters.to_vec()].concat(),
        "a (rank 8)",
    )
}

/// POSTs `body` as JSON to `path` and returns the JSON answer (status 200 asserted).
fn post(server: &Server, path: &str, body: &Value) -> Value {
    let body = body.to_string();
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("read");
    let (head, answer) = reply.split_once("\r\n\r\n").expect("a whole answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{reply}");
    serde_json::from_str(answer).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

#[test]
fn the_server_answers_the_openai_client_curl_and_a_prometheus_parser() {
    let Some((model, peft, python)) = inputs() else {
        return;
    };
    let mut server = start(&model, &peft);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/serve/e2e.py");
    let out = Command::new(python)
        .arg(script)
        .arg(server.url())
        .arg("smollm2")
        .arg(&peft)
        .output()
        .expect("run e2e.py");
    // SIGTERM: drain, then exit 0.
    let status = server.stop();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("e2e: all checks passed"), "{stdout}");
    assert!(
        status.success(),
        "fastlibra serve exited with {status} after SIGTERM"
    );
}

/// The text `fastlibra generate` writes greedily for `prompt` (`--prompt` or `--chat`).
fn generate(model: &Path, lora: Option<&Path>, prompt: (&str, &str), max_tokens: u32) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fastlibra"));
    cmd.args(["generate", "--model"]).arg(model);
    if let Some(dir) = lora {
        cmd.arg("--lora").arg(dir);
    }
    let out = cmd
        .args([prompt.0, prompt.1, "--temperature", "0"])
        .args(["--max-tokens", &max_tokens.to_string()])
        .output()
        .expect("run fastlibra generate");
    assert!(
        out.status.success(),
        "fastlibra generate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8 text");
    // It ends the text with one newline of its own.
    text.strip_suffix('\n')
        .expect("a closing newline")
        .to_string()
}

#[test]
fn greedy_output_through_the_server_equals_fastlibra_generates() {
    let Some((model, peft, _)) = inputs() else {
        return;
    };
    let mut server = start(&model, &peft);
    let max_tokens = 24;
    let prompt = "The three most useful things to know about databases are";
    let chat = "Write one sentence about the sea.";
    for (name, lora) in [("smollm2", None), ("a", Some(peft.as_path()))] {
        let expected = generate(&model, lora, ("--prompt", prompt), max_tokens);
        let answer = post(
            &server,
            "/v1/completions",
            &json!({"model": name, "prompt": prompt, "max_tokens": max_tokens,
                    "temperature": 0}),
        );
        let text = answer["choices"][0]["text"].as_str().expect("text");
        assert!(!text.is_empty(), "{answer}");
        assert_eq!(text, expected, "completion of `{name}`");

        let expected = generate(&model, lora, ("--chat", chat), max_tokens);
        let answer = post(
            &server,
            "/v1/chat/completions",
            &json!({"model": name, "messages": [{"role": "user", "content": chat}],
                    "max_tokens": max_tokens, "temperature": 0}),
        );
        let text = answer["choices"][0]["message"]["content"]
            .as_str()
            .expect("content");
        assert!(!text.is_empty(), "{answer}");
        assert_eq!(text, expected, "chat of `{name}`");
    }
    let status = server.stop();
    assert!(status.success(), "exit status {status} after SIGTERM");
}
