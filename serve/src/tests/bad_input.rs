//! Every bad request gets its status and an OpenAI-style body, and the server keeps serving.

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::client::{Reply, post, raw, read_reply, request, serve};
use super::fake::{AdapterDir, FakeBackend, FakeConfig};
use crate::options::FrontOptions;

const OK: &str = r#"{"model": "alpha", "prompt": "x", "max_tokens": 2}"#;

/// The server still answers a good request.
fn still_serving(addr: SocketAddr) {
    let r = post(addr, "/v1/completions", OK);
    assert_eq!(r.status, 200, "the server stopped serving: {}", r.body);
}

fn setup(
    config: FakeConfig,
    options: FrontOptions,
) -> (Arc<FakeBackend>, crate::Server, AdapterDir) {
    let a = AdapterDir::new(&format!("bad-{}", rand_tag()));
    let fake = FakeBackend::new(config, &[("alpha", &a.0)]);
    let server = serve(fake.clone(), options);
    (fake, server, a)
}

fn rand_tag() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

fn completion(addr: SocketAddr, body: &str) -> Reply {
    post(addr, "/v1/completions", body)
}

#[test]
fn malformed_missing_and_mistyped_fields_are_400s_naming_the_field() {
    let (_f, server, _a) = setup(FakeConfig::default(), FrontOptions::default());
    let addr = server.local_addr();
    let e = completion(addr, r#"{"model": "alpha", "prompt": "#).error(400);
    assert!(
        e["message"].as_str().unwrap().contains("not valid JSON"),
        "{e}"
    );
    let e = completion(addr, r#"{"prompt": "x"}"#).error(400);
    assert!(e["message"].as_str().unwrap().contains("model"), "{e}");
    let e = completion(
        addr,
        r#"{"model": "alpha", "prompt": "x", "temperature": "hot"}"#,
    )
    .error(400);
    assert_eq!(e["param"], "temperature");
    let e = post(
        addr,
        "/v1/chat/completions",
        r#"{"model": "alpha", "messages": "hi"}"#,
    )
    .error(400);
    assert_eq!(e["param"], "messages");
    let e = completion(addr, r#"{"model": "alpha", "prompt": "x", "top_p": 0}"#).error(400);
    assert_eq!(e["param"], "top_p");
    let e = completion(addr, r#"{"model": "alpha", "prompt": ""}"#).error(400);
    assert_eq!(e["param"], "prompt");
    let e = completion(addr, r#"{"model": "alpha", "prompt": [999999]}"#).error(400);
    assert_eq!(e["param"], "prompt");
    still_serving(addr);
    server.stop();
}

#[test]
fn an_unknown_model_is_404_as_vllm_answers() {
    let (_f, server, _a) = setup(FakeConfig::default(), FrontOptions::default());
    let addr = server.local_addr();
    let e = completion(addr, r#"{"model": "nobody", "prompt": "x"}"#).error(404);
    assert_eq!(e["type"], "NotFoundError");
    let body = r#"{"model": "nobody", "messages": [{"role": "user", "content": "x"}]}"#;
    post(addr, "/v1/chat/completions", body).error(404);
    still_serving(addr);
    server.stop();
}

#[test]
fn prompt_plus_max_tokens_over_the_context_and_n_above_1_are_400s() {
    let (_f, server, _a) = setup(FakeConfig::default(), FrontOptions::default());
    let addr = server.local_addr();
    let e = completion(
        addr,
        r#"{"model": "alpha", "prompt": "xxxx", "max_tokens": 61}"#,
    )
    .error(400);
    assert_eq!(e["param"], "max_tokens");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("maximum context length is 64"),
        "{e}"
    );
    let long = "y".repeat(70);
    completion(
        addr,
        &format!(r#"{{"model": "alpha", "prompt": "{long}"}}"#),
    )
    .error(400);
    let e = completion(addr, r#"{"model": "alpha", "prompt": "x", "n": 2}"#).error(400);
    assert_eq!(e["param"], "n");
    // Exactly at the limit is fine.
    let r = completion(
        addr,
        r#"{"model": "alpha", "prompt": "xxxx", "max_tokens": 60}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    still_serving(addr);
    server.stop();
}

#[test]
fn a_body_over_the_limit_is_413() {
    let options = FrontOptions {
        body_bytes_max: 1024,
        ..FrontOptions::default()
    };
    let (_f, server, _a) = setup(FakeConfig::default(), options);
    let addr = server.local_addr();
    let big = format!(r#"{{"model": "alpha", "prompt": "{}"}}"#, "z".repeat(2000));
    let e = completion(addr, &big).error(413);
    assert_eq!(e["type"], "RequestTooLargeError");
    // Without Content-Length (chunked), the limit still holds while reading.
    let chunked = format!(
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    raw(addr, chunked.as_bytes()).error(413);
    still_serving(addr);
    server.stop();
}

#[test]
fn a_wrong_or_missing_api_key_is_401_and_health_stays_open() {
    let options = FrontOptions {
        api_key: Some("s3cret".to_string()),
        ..FrontOptions::default()
    };
    let (_f, server, _a) = setup(FakeConfig::default(), options);
    let addr = server.local_addr();
    completion(addr, OK).error(401);
    let wrong = [("Authorization", "Bearer nope")];
    request(addr, "POST", "/v1/completions", &wrong, OK).error(401);
    request(addr, "GET", "/v1/models", &wrong, "").error(401);
    let right = [("Authorization", "Bearer s3cret")];
    assert_eq!(
        request(addr, "POST", "/v1/completions", &right, OK).status,
        200
    );
    assert_eq!(super::client::get(addr, "/health").status, 200);
    assert_eq!(super::client::get(addr, "/metrics").status, 200);
    server.stop();
}

#[test]
fn a_bad_lora_path_is_400_and_registers_nothing() {
    let (fake, server, _a) = setup(FakeConfig::default(), FrontOptions::default());
    let addr = server.local_addr();
    let body = r#"{"lora_name": "ghost", "lora_path": "/does/not/exist"}"#;
    let e = post(addr, "/v1/load_lora_adapter", body).error(400);
    assert_eq!(e["param"], "lora_path");
    post(addr, "/v1/load_lora_adapter", r#"{"lora_name": "ghost"}"#).error(400);
    completion(addr, r#"{"model": "ghost", "prompt": "x"}"#).error(404);
    use fastlibra_runtime::online::ServeBackend;
    assert_eq!(fake.adapters().len(), 1);
    still_serving(addr);
    server.stop();
}

#[test]
fn unloading_an_adapter_in_use_lets_its_requests_finish_and_refuses_new_ones() {
    let config = FakeConfig {
        token_pace: Duration::from_millis(20),
        ..FakeConfig::default()
    };
    let (_f, server, _a) = setup(config, FrontOptions::default());
    let addr = server.local_addr();
    let running = std::thread::spawn(move || {
        completion(
            addr,
            r#"{"model": "alpha", "prompt": "x", "max_tokens": 20}"#,
        )
    });
    std::thread::sleep(Duration::from_millis(100));
    let r = post(addr, "/v1/unload_lora_adapter", r#"{"lora_name": "alpha"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    completion(addr, OK).error(404);
    let finished = running.join().unwrap();
    assert_eq!(finished.status, 200, "{}", finished.body);
    assert_eq!(finished.json()["usage"]["completion_tokens"], 20);
    server.stop();
}

#[test]
fn too_many_requests_get_429_at_the_front_and_503_from_the_runtime_with_retry_after() {
    let config = FakeConfig {
        token_pace: Duration::from_millis(30),
        max_active: 1,
    };
    let options = FrontOptions {
        max_in_flight: 2,
        ..FrontOptions::default()
    };
    let (fake, server, _a) = setup(config, options);
    let addr = server.local_addr();
    let slow = r#"{"model": "alpha", "prompt": "x", "max_tokens": 15}"#;
    let first = std::thread::spawn(move || completion(addr, slow));
    std::thread::sleep(Duration::from_millis(100));
    // The runtime holds one: the second is refused by it (503), with its Retry-After.
    let r = completion(addr, OK);
    r.error(503);
    assert_eq!(r.header("retry-after"), Some("2"));
    assert_eq!(first.join().unwrap().status, 200);
    assert!(fake.wait_idle(Duration::from_secs(5)));

    // Two slow ones fill the front's slots: the third is refused by the front (429).
    let config = FakeConfig {
        token_pace: Duration::from_millis(30),
        ..FakeConfig::default()
    };
    let options = FrontOptions {
        max_in_flight: 2,
        ..FrontOptions::default()
    };
    let (_f, server2, _b) = setup(config, options);
    let addr2 = server2.local_addr();
    let busy: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(move || completion(addr2, slow)))
        .collect();
    std::thread::sleep(Duration::from_millis(150));
    let r = completion(addr2, OK);
    r.error(429);
    assert_eq!(r.header("retry-after"), Some("1"));
    for b in busy {
        assert_eq!(b.join().unwrap().status, 200);
    }
    still_serving(addr2);
    server.stop();
    server2.stop();
}

#[test]
fn a_client_that_sends_half_a_request_and_stalls_is_timed_out() {
    let options = FrontOptions {
        read_timeout: Duration::from_millis(300),
        ..FrontOptions::default()
    };
    let (_f, server, _a) = setup(FakeConfig::default(), options);
    let addr = server.local_addr();

    // Half the body: 408 once the read timeout passes.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"mod")
        .unwrap();
    let start = Instant::now();
    let reply = read_reply(&mut BufReader::new(s));
    reply.error(408);
    assert!(start.elapsed() < Duration::from_secs(5));

    // Half the headers: the connection is closed.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Le")
        .unwrap();
    let start = Instant::now();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "the stalled connection was freed"
    );
    still_serving(addr);
    server.stop();
}
