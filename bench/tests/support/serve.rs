//! A `fastlibra serve` process for the end-to-end tests: started on a free 127.0.0.1 port,
//! its start-up line checked, its stdout drained so it never blocks on a full pipe, SIGTERM on
//! [`Server::stop`], killed on drop (a failed assertion leaves no server behind).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};

/// A running `fastlibra serve`.
pub struct Server {
    child: Child,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
}

impl Server {
    /// Starts `fastlibra serve --model MODEL --served-model-name smollm2 --host 127.0.0.1
    /// --port P ARGS…` and returns once its start-up line says it listens; the line must also
    /// contain `expect` (say, an adapter it should have loaded).
    pub fn start(model: &Path, args: &[String], expect: &str) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_fastlibra"))
            .args(["serve", "--model"])
            .arg(model)
            .args(["--served-model-name", "smollm2", "--host", "127.0.0.1"])
            .args(["--port", &port.to_string()])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start fastlibra serve");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("start-up line");
        let server = Server { child, port };
        assert!(
            line.contains(&format!("listening on {}", server.url())) && line.contains(expect),
            "start-up line: {line}"
        );
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        server
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGTERM, then the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.child.wait().expect("wait for the server")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
