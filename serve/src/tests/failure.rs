//! A shard that stops serving (it panicked) must not hang the server: the requests running on
//! it end with an OpenAI-style error, new ones get 503, and `/health` reports it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::client::{get, post, serve};
use super::fake::{AdapterDir, FakeBackend, FakeConfig};
use crate::options::FrontOptions;

#[test]
fn a_shard_that_panics_fails_its_requests_refuses_new_ones_and_is_unhealthy() {
    let a = AdapterDir::new("failure");
    let config = FakeConfig {
        token_pace: Duration::from_millis(20),
        ..FakeConfig::default()
    };
    let fake = FakeBackend::new(config, &[("alpha", &a.0)]);
    let server = serve(fake.clone(), FrontOptions::default());
    let addr = server.local_addr();
    assert_eq!(get(addr, "/health").status, 200);

    let plain = std::thread::spawn(move || {
        post(
            addr,
            "/v1/completions",
            r#"{"model": "alpha", "prompt": "x", "max_tokens": 60}"#,
        )
    });
    let body = r#"{"model": "alpha", "prompt": "x", "max_tokens": 60, "stream": true}"#;
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut stream = BufReader::new(s);
    let mut line = String::new();
    while !line.starts_with("data:") {
        line.clear();
        assert!(stream.read_line(&mut line).unwrap() > 0, "no first chunk");
    }

    fake.crash("it panicked: boom");

    // The plain request gets a 500 with an OpenAI-style body naming the cause.
    let answer = plain.join().unwrap();
    let e = answer.error(500);
    assert_eq!(e["type"], "InternalServerError", "{e}");
    assert!(e["message"].as_str().unwrap().contains("panicked"), "{e}");
    // The stream ends with an error chunk, then `[DONE]`, instead of hanging.
    let mut rest = String::new();
    stream.read_to_string(&mut rest).unwrap();
    assert!(rest.contains(r#""code":500"#), "{rest}");
    assert!(rest.contains("panicked"), "{rest}");
    assert!(rest.contains("data: [DONE]"), "{rest}");
    // New requests get 503, and so does /health.
    let refused = post(
        addr,
        "/v1/completions",
        r#"{"model": "alpha", "prompt": "x", "max_tokens": 4}"#,
    );
    let e = refused.error(503);
    assert!(e["message"].as_str().unwrap().contains("panicked"), "{e}");
    let health = get(addr, "/health");
    let e = health.error(503);
    assert!(e["message"].as_str().unwrap().contains("panicked"), "{e}");
    // Routers that scrape rather than probe see it too.
    let metrics = get(addr, "/metrics").body;
    assert!(
        metrics
            .lines()
            .any(|l| l == "fastlibra:shard_up{shard=\"0\"} 0.0"),
        "{metrics}"
    );
    assert!(
        fake.wait_idle(Duration::from_secs(5)),
        "a request still runs"
    );
    let report = server.stop();
    assert_eq!(report.cancelled, 0);
}
