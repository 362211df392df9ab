//! Cancellation when a client goes away, and draining on shutdown.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::client::{post, serve};
use super::fake::{AdapterDir, FakeBackend, FakeConfig};
use crate::options::FrontOptions;

fn slow_fake(tag: &str) -> (std::sync::Arc<FakeBackend>, AdapterDir) {
    let a = AdapterDir::new(tag);
    let config = FakeConfig {
        token_pace: Duration::from_millis(20),
        ..FakeConfig::default()
    };
    (FakeBackend::new(config, &[("alpha", &a.0)]), a)
}

fn send(addr: std::net::SocketAddr, body: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let text = format!(
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(text.as_bytes()).unwrap();
    s
}

#[test]
fn a_client_that_disconnects_mid_stream_cancels_its_request() {
    let (fake, _a) = slow_fake("life-stream");
    let server = serve(fake.clone(), FrontOptions::default());
    let body = r#"{"model": "alpha", "prompt": "x", "max_tokens": 60, "stream": true}"#;
    let s = send(server.local_addr(), body);
    let mut reader = BufReader::new(s);
    let mut line = String::new();
    while !line.starts_with("data:") {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "the stream ended early"
        );
    }
    assert_eq!(fake.active.load(Ordering::SeqCst), 1);
    drop(reader);
    assert!(
        fake.wait_idle(Duration::from_secs(5)),
        "the request was not cancelled"
    );
    assert_eq!(fake.cancelled.load(Ordering::SeqCst), 1);
    assert_eq!(fake.finished.load(Ordering::SeqCst), 0);
    let metrics = super::client::get(server.local_addr(), "/metrics").body;
    assert!(
        metrics.contains("fastlibra:requests_cancelled_total 1"),
        "{metrics}"
    );
    server.stop();
}

#[test]
fn a_client_that_disconnects_while_waiting_for_a_plain_answer_cancels_it() {
    let (fake, _a) = slow_fake("life-plain");
    let server = serve(fake.clone(), FrontOptions::default());
    let s = send(
        server.local_addr(),
        r#"{"model": "alpha", "prompt": "x", "max_tokens": 60}"#,
    );
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(fake.active.load(Ordering::SeqCst), 1);
    drop(s);
    assert!(
        fake.wait_idle(Duration::from_secs(5)),
        "the request was not cancelled"
    );
    assert_eq!(fake.cancelled.load(Ordering::SeqCst), 1);
    server.stop();
}

#[test]
fn stop_finishes_the_requests_in_flight_then_refuses_new_ones() {
    let (fake, _a) = slow_fake("life-drain");
    let server = serve(fake.clone(), FrontOptions::default());
    let addr = server.local_addr();
    let running = std::thread::spawn(move || {
        post(
            addr,
            "/v1/completions",
            r#"{"model": "alpha", "prompt": "x", "max_tokens": 10}"#,
        )
    });
    std::thread::sleep(Duration::from_millis(80));
    let report = server.stop();
    let answer = running.join().unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["usage"]["completion_tokens"], 10);
    assert_eq!(report.finished, 1);
    assert_eq!(report.cancelled, 0);
    assert!(TcpStream::connect(addr).is_err(), "the listener is closed");
}
