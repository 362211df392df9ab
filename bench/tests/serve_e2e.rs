//! `fastlibra serve` end to end: the real binary on 127.0.0.1 with a free port, the real
//! SmolLM2 model and two adapters, driven by the official `openai` Python client, curl and
//! `prometheus_client` (`tests/serve/e2e.py`), then stopped by SIGTERM (exit status 0).
//! Skips with a message when the model, the reference adapter or the venv is missing, and
//! fails then under `FASTLIBRA_REQUIRE_MODEL=1`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use fastlibra_kernels::checkpoint::locate;

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

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

#[test]
fn the_server_answers_the_openai_client_curl_and_a_prometheus_parser() {
    let Some((model, peft, python)) = inputs() else {
        return;
    };
    let port = free_port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_fastlibra"))
        .args(["serve", "--model"])
        .arg(&model)
        .args(["--served-model-name", "smollm2", "--max-model-len", "512"])
        .args(["--port", &port.to_string(), "--lora-modules"])
        .arg(format!("a={}", peft.display()))
        .arg(format!("b={}", peft.display()))
        .stdout(Stdio::piped())
        .spawn()
        .expect("start fastlibra serve");
    let mut line = String::new();
    let stdout = server.stdout.take().expect("stdout");
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("start-up line");
    assert!(
        line.contains(&format!("listening on http://127.0.0.1:{port}"))
            && line.contains("a (rank 8)"),
        "start-up line: {line}"
    );
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/serve/e2e.py");
    let out = Command::new(python)
        .arg(script)
        .arg(format!("http://127.0.0.1:{port}"))
        .arg("smollm2")
        .arg(&peft)
        .output()
        .expect("run e2e.py");
    // SIGTERM: drain, then exit 0.
    let pid = server.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let status = server.wait().expect("wait");
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
