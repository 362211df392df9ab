//! A tiny HTTP/1.1 server on 127.0.0.1 (a free port) that answers `/v1/completions` with
//! canned behaviour chosen by the request's `model`, for the HTTP backend's tests:
//!
//! | model | answer |
//! |---|---|
//! | `ok` | 200, three SSE chunks (`tok0 tok1 tok2`), usage, `[DONE]` |
//! | `busy` | 503 with an OpenAI-style error body |
//! | `html` | 200 `text/html` |
//! | `broken` | 200 SSE, one chunk, then the connection closes |
//! | `stall` | 200 SSE, one chunk, then silence for `stall` |
//! | `hang` | nothing at all for `stall` |
//!
//! Started with [`Canned::start_with_ids`], `ok` also answers vLLM's `return_token_ids`: each
//! chunk carries its token's id (100, 101, 102).
//!
//! A non-streamed text request is answered with `usage.prompt_tokens` = 2 × its words
//! (what the client's calibration reads). Every request body is kept, so tests can check what was sent and in which order. Each
//! connection serves one request and closes; the server thread stops when dropped.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The models `/v1/models` lists.
pub const MODELS: [&str; 6] = ["ok", "busy", "html", "broken", "stall", "hang"];

/// A running canned server.
pub struct Canned {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Request bodies of `/v1/completions`, in arrival order.
    pub bodies: Arc<Mutex<Vec<serde_json::Value>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Canned {
    /// Starts the server; `stall` is how long `stall` and `hang` stay silent. It sends no
    /// token ids (as servers without `return_token_ids`).
    pub fn start(stall: Duration) -> Canned {
        Canned::start_inner(stall, false)
    }

    /// [`Canned::start`], answering `return_token_ids` as vLLM and `fastlibra serve` do.
    pub fn start_with_ids(stall: Duration) -> Canned {
        Canned::start_inner(stall, true)
    }

    fn start_inner(stall: Duration, ids: bool) -> Canned {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (b, s) = (bodies.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let b = b.clone();
                        std::thread::spawn(move || serve(conn, &b, stall, ids));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Canned {
            url,
            bodies,
            stop,
            thread: Some(thread),
        }
    }

    /// The prompts sent, in arrival order, as JSON text.
    pub fn prompts(&self) -> Vec<String> {
        let bodies = self.bodies.lock().expect("lock");
        bodies.iter().map(|b| b["prompt"].to_string()).collect()
    }
}

impl Drop for Canned {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(conn: TcpStream, bodies: &Mutex<Vec<serde_json::Value>>, stall: Duration, ids: bool) {
    let _ = conn.set_nonblocking(false);
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    let _ = reader.read_exact(&mut body);
    let mut conn = conn;
    match path.as_str() {
        "/v1/models" => {
            let data: Vec<_> = MODELS
                .iter()
                .map(|m| serde_json::json!({"id": m}))
                .collect();
            let body = serde_json::json!({"object": "list", "data": data}).to_string();
            respond(&mut conn, "200 OK", "application/json", &body);
        }
        "/v1/completions" => {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let model = v["model"].as_str().unwrap_or("").to_string();
            let streamed = v["stream"].as_bool().unwrap_or(false);
            let words = v["prompt"].as_str().map(|p| p.split_whitespace().count());
            let ids = ids && v["return_token_ids"] == serde_json::json!(true);
            bodies.lock().expect("lock").push(v);
            match (streamed, words) {
                // A non-streamed text request (calibration): two tokens per word.
                (false, Some(words)) => {
                    let usage = serde_json::json!({"choices": [{"text": "x"}],
                        "usage": {"prompt_tokens": 2 * words, "completion_tokens": 1}});
                    respond(&mut conn, "200 OK", "application/json", &usage.to_string());
                }
                _ => completion(&mut conn, &model, stall, ids),
            }
        }
        _ => respond(&mut conn, "404 Not Found", "text/plain", "no such path"),
    }
}

fn respond(conn: &mut TcpStream, status: &str, content_type: &str, body: &str) {
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn chunk(text: &str) -> String {
    format!(
        "data: {}\n\n",
        serde_json::json!({"choices": [{"index": 0, "text": text, "finish_reason": null}]})
    )
}

fn chunk_with_id(text: &str, id: u32) -> String {
    format!(
        "data: {}\n\n",
        serde_json::json!({"choices": [{"index": 0, "text": text, "token_ids": [id],
            "finish_reason": null}]})
    )
}

fn completion(conn: &mut TcpStream, model: &str, stall: Duration, ids: bool) {
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
    match model {
        "ok" => {
            let _ = conn.write_all(head.as_bytes());
            for i in 0..3 {
                let text = format!(" tok{i}");
                let piece = if ids {
                    chunk_with_id(&text, 100 + i)
                } else {
                    chunk(&text)
                };
                let _ = conn.write_all(piece.as_bytes());
                let _ = conn.flush();
                std::thread::sleep(Duration::from_millis(5));
            }
            let end = serde_json::json!({"choices": [{"index": 0, "text": "", "finish_reason": "length"}], "usage": {"prompt_tokens": 1, "completion_tokens": 3}});
            let _ = write!(conn, "data: {end}\n\ndata: [DONE]\n\n");
        }
        "busy" => respond(
            conn,
            "503 Service Unavailable",
            "application/json",
            r#"{"error":{"message":"overloaded","type":"server_error"}}"#,
        ),
        "html" => respond(conn, "200 OK", "text/html", "<html>hello</html>"),
        "broken" => {
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(chunk(" half").as_bytes());
        }
        "stall" => {
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(chunk(" slow").as_bytes());
            let _ = conn.flush();
            std::thread::sleep(stall);
        }
        _ => std::thread::sleep(stall),
    }
}
