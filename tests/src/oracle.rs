//! Drives an independent implementation (Baileys, libsignal-node, whatsapp-rust-bridge, installed
//! from npm into `tests/oracle/node_modules` by `./build.sh setup`) from Rust tests.
//!
//! Each oracle is a Node script under `tests/oracle/` that answers JSON-lines requests on its
//! standard input (see `tests/oracle/rpc.mjs`). Bytes travel as hex strings.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{Value, json};

/// Why a call to an oracle failed.
#[derive(Debug, thiserror::Error)]
pub enum OracleError {
    /// The Node process could not be started or its pipes broke.
    #[error("oracle process: {0}")]
    Io(#[from] std::io::Error),
    /// The oracle answered something that is not the expected JSON.
    #[error("oracle reply is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The oracle's own code threw.
    #[error("oracle threw: {0}")]
    Threw(String),
    /// The oracle closed its output.
    #[error("oracle exited")]
    Exited,
}

/// A running oracle script.
pub struct Oracle {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// The folder that holds the oracle scripts and their `node_modules`.
pub fn oracle_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("oracle")
}

impl Oracle {
    /// Starts `node tests/oracle/<script>`.
    pub fn spawn(script: &str) -> Result<Oracle, OracleError> {
        let dir = oracle_dir();
        if !dir.join("node_modules").is_dir() {
            return Err(OracleError::Io(std::io::Error::other(
                "tests/oracle/node_modules is missing: run ./build.sh setup",
            )));
        }
        let mut child = Command::new("node")
            .arg(dir.join(script))
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take().ok_or(OracleError::Exited)?;
        let stdout = BufReader::new(child.stdout.take().ok_or(OracleError::Exited)?);
        Ok(Oracle {
            child,
            stdin,
            stdout,
        })
    }

    /// Calls `method` with `params` and returns the oracle's answer.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, OracleError> {
        let request = json!({ "method": method, "params": params });
        writeln!(self.stdin, "{request}")?;
        self.stdin.flush()?;
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            return Err(OracleError::Exited);
        }
        let mut reply: Value = serde_json::from_str(&line)?;
        if let Some(error) = reply.get("error") {
            return Err(OracleError::Threw(
                error.as_str().unwrap_or_default().to_owned(),
            ));
        }
        Ok(reply.get_mut("ok").map(Value::take).unwrap_or(Value::Null))
    }
}

impl Drop for Oracle {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_bytes_and_reports_errors() -> Result<(), OracleError> {
        let mut oracle = Oracle::spawn("echo.mjs")?;
        let reply = oracle.call("reverse", json!({ "data": "010203" }))?;
        assert_eq!(reply, json!("030201"));
        assert!(matches!(
            oracle.call("fail", json!({})),
            Err(OracleError::Threw(_))
        ));
        Ok(())
    }
}
