//! `--spawn-server`: start the server under test once per policy, wait until it answers, and
//! stop it when the run is over.
//!
//! The command is a shell line; `{policy}` and `{port}` in it are replaced by the policy's name
//! and a free port on 127.0.0.1. It runs in its own process group with its output in a log
//! file, so that stopping it (SIGTERM, then SIGKILL after a grace period) also stops whatever
//! the shell started. The server is ready when `GET /health` answers 200, or, for servers
//! without that endpoint (it answers 404), when `GET /v1/models` does.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::client::Client;

/// How long a stopped server has to exit before it is killed.
const GRACE: Duration = Duration::from_secs(5);

/// How often readiness is probed.
const PROBE_EVERY: Duration = Duration::from_millis(250);

/// Why a server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The log file could not be created.
    #[error("server log {path}: {source}")]
    Log {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The command could not be started.
    #[error("cannot start `{command}`: {source}")]
    Start {
        /// The command line.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// The server exited before it was ready.
    #[error("`{command}` exited ({status}) before it answered; see {log}")]
    Exited {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// Its log file.
        log: String,
    },
    /// The server did not answer in time.
    #[error("`{command}` did not answer {url}/health within {secs} s ({last}); see {log}")]
    NotReady {
        /// The command line.
        command: String,
        /// The URL probed.
        url: String,
        /// Seconds waited.
        secs: u64,
        /// The last probe's answer.
        last: String,
        /// Its log file.
        log: String,
    },
    /// No free port, or no runtime for the probes.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A running server; stopped when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// The command line as run.
    pub command: String,
    /// Its base URL.
    pub url: String,
    /// Its log file.
    pub log: PathBuf,
}

/// `template` with `{policy}` and `{port}` replaced.
pub fn substitute(template: &str, policy: &str, port: u16) -> String {
    template
        .replace("{policy}", policy)
        .replace("{port}", &port.to_string())
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

impl ServerProcess {
    /// Starts `command` (a shell line), its output going to `log`; does not wait.
    pub fn start(command: &str, url: &str, log: &Path) -> Result<ServerProcess, SpawnError> {
        let file = File::create(log).map_err(|source| SpawnError::Log {
            path: log.display().to_string(),
            source,
        })?;
        let err_file = file.try_clone()?;
        let child = Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err_file)
            .process_group(0)
            .spawn()
            .map_err(|source| SpawnError::Start {
                command: command.to_string(),
                source,
            })?;
        Ok(ServerProcess {
            child,
            command: command.to_string(),
            url: url.trim_end_matches('/').to_string(),
            log: log.to_path_buf(),
        })
    }

    /// Waits until the server answers, it exits, or `within` passes.
    pub fn wait_ready(&mut self, within: Duration) -> Result<(), SpawnError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = Client::new(&self.url, None, Duration::from_secs(2)).map_err(|e| {
            SpawnError::Io(std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
        })?;
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(SpawnError::Exited {
                    command: self.command.clone(),
                    status: status.to_string(),
                    log: self.log.display().to_string(),
                });
            }
            let last = match rt.block_on(probe(&client)) {
                Ok(()) => return Ok(()),
                Err(why) => why,
            };
            if start.elapsed() >= within {
                return Err(SpawnError::NotReady {
                    command: self.command.clone(),
                    url: self.url.clone(),
                    secs: within.as_secs(),
                    last,
                    log: self.log.display().to_string(),
                });
            }
            std::thread::sleep(PROBE_EVERY);
        }
    }

    /// Stops the server's process group: SIGTERM, then SIGKILL after a grace period.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let group = -(self.child.id() as i32);
        // SAFETY: kill(2) with a negative pid signals the process group this child leads
        // (process_group(0) made it a leader); no memory is touched.
        unsafe { libc::kill(group, libc::SIGTERM) };
        let start = Instant::now();
        while start.elapsed() < GRACE {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: as above.
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `/health` 200, or `/health` 404 and `/v1/models` 200.
async fn probe(client: &Client) -> Result<(), String> {
    let (status, _) = client.call("/health", None).await?;
    if status.is_success() {
        return Ok(());
    }
    if status.as_u16() != 404 {
        return Err(format!("/health answered {status}"));
    }
    let (status, _) = client.call("/v1/models", None).await?;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("/health answered 404 and /v1/models {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced_everywhere() {
        assert_eq!(
            substitute("serve --policy {policy} --port {port} # {port}", "vllm", 81),
            "serve --policy vllm --port 81 # 81"
        );
    }

    #[test]
    fn a_server_that_exits_is_reported_with_its_log() {
        let dir = std::env::temp_dir().join(format!("fastlibra-spawn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let log = dir.join("server.log");
        let port = free_port().expect("port");
        let url = format!("http://127.0.0.1:{port}");
        let mut s = ServerProcess::start("echo starting; exit 3", &url, &log).expect("starts");
        let err = s.wait_ready(Duration::from_secs(10)).expect_err("exits");
        assert!(matches!(err, SpawnError::Exited { .. }), "{err}");
        assert!(
            std::fs::read_to_string(&log)
                .expect("log")
                .contains("starting")
        );
        let mut s = ServerProcess::start("sleep 30", &url, &log).expect("starts");
        let err = s
            .wait_ready(Duration::from_millis(600))
            .expect_err("silent");
        assert!(matches!(err, SpawnError::NotReady { .. }), "{err}");
        s.stop();
        assert!(matches!(s.child.try_wait(), Ok(Some(_))));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
