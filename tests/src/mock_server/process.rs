//! Starting the `mock-server` binary as a child process and reading where it listens, for the
//! demo and the tests that want a real process boundary.

use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

/// Why the child could not be started or did not announce itself.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The binary could not be started.
    #[error("cannot start {path}: {error}")]
    Start {
        /// The binary.
        path: String,
        /// The error.
        error: io::Error,
    },
    /// The first stdout line is missing or not the expected banner.
    #[error("mock-server did not print its banner (got {0:?})")]
    Banner(String),
}

/// A running `mock-server` child; killed when dropped.
pub struct MockProcess {
    child: Child,
    /// Kept open so `--until-stdin-closes` ends the child if this process dies.
    _stdin: Option<ChildStdin>,
    /// The websocket URL clients connect to.
    pub ws_url: String,
    /// The control endpoint's address.
    pub control_addr: SocketAddr,
    /// The banner line as printed.
    pub banner: String,
}

/// Reads `ws://HOST:PORT` and `http://HOST:PORT` out of the banner line
/// `walink-sim listening ws://... control http://...`.
pub fn parse_banner(line: &str) -> Option<(String, SocketAddr)> {
    let rest = line.trim().strip_prefix("walink-sim listening ")?;
    let (ws, control) = rest.split_once(" control ")?;
    let ws_addr: SocketAddr = ws.strip_prefix("ws://")?.parse().ok()?;
    let control_addr: SocketAddr = control.strip_prefix("http://")?.parse().ok()?;
    Some((format!("ws://{ws_addr}/ws/chat"), control_addr))
}

impl MockProcess {
    /// Starts `binary --seed SEED --until-stdin-closes` and waits for its banner.
    pub fn spawn(binary: &Path, seed: u64) -> Result<Self, SpawnError> {
        let start_error = |error| SpawnError::Start {
            path: binary.display().to_string(),
            error,
        };
        let mut child = Command::new(binary)
            .args(["--seed", &seed.to_string(), "--until-stdin-closes"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(start_error)?;
        let stdin = child.stdin.take();
        let mut banner = String::new();
        let read = match child.stdout.take() {
            Some(stdout) => BufReader::new(stdout).read_line(&mut banner),
            None => Ok(0),
        };
        let parsed = match read {
            Ok(_) => parse_banner(&banner),
            Err(_) => None,
        };
        match parsed {
            Some((ws_url, control_addr)) => Ok(MockProcess {
                child,
                _stdin: stdin,
                ws_url,
                control_addr,
                banner: banner.trim().to_owned(),
            }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err(SpawnError::Banner(banner))
            }
        }
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for MockProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::parse_banner;

    #[test]
    fn banner() {
        let (ws, control) = parse_banner(
            "walink-sim listening ws://127.0.0.1:4000 control http://127.0.0.1:4001\n",
        )
        .expect("the banner parses");
        assert_eq!(ws, "ws://127.0.0.1:4000/ws/chat");
        assert_eq!(control.port(), 4001);
        assert!(parse_banner("listening on 4000").is_none());
        assert!(parse_banner("walink-sim listening ws://x control http://127.0.0.1:1").is_none());
    }
}
