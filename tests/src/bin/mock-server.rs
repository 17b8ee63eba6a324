//! `mock-server`: walink's simulated WhatsApp server on a real websocket, with an HTTP control
//! endpoint that drives the simulated phones. See tests/README.md ("mock-server").
//!
//! Prints one line on stdout once it listens, then serves until killed:
//!
//! ```text
//! walink-sim listening ws://127.0.0.1:PORT control http://127.0.0.1:PORT2
//! ```

#![warn(unreachable_pub)]
#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

use walink_sim::mock_server::MockServer;
use walink_sim::mock_server::sim_backend::SimBackend;

const USAGE: &str =
    "usage: mock-server [--port N] [--control-port N] [--seed N] [--until-stdin-closes]
  --port N              websocket port on 127.0.0.1 (default: chosen by the OS)
  --control-port N      HTTP control port on 127.0.0.1 (default: chosen by the OS)
  --seed N              seed of every random choice of the simulation (default: 1)
  --until-stdin-closes  exit when standard input reaches its end (for parent processes)";

/// The parsed command line.
struct Options {
    port: u16,
    control_port: u16,
    seed: u64,
    until_stdin_closes: bool,
}

fn parse(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        port: 0,
        control_port: 0,
        seed: 1,
        until_stdin_closes: false,
    };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--port" => {
                options.port = value("--port")?
                    .parse()
                    .map_err(|_| "--port needs a port number".to_owned())?;
            }
            "--control-port" => {
                options.control_port = value("--control-port")?
                    .parse()
                    .map_err(|_| "--control-port needs a port number".to_owned())?;
            }
            "--seed" => {
                options.seed = value("--seed")?
                    .parse()
                    .map_err(|_| "--seed needs an unsigned 64-bit number".to_owned())?;
            }
            "--until-stdin-closes" => options.until_stdin_closes = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("mock-server: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let server = match MockServer::start(
        SimBackend::new(options.seed),
        options.port,
        options.control_port,
    ) {
        Ok(server) => server,
        Err(error) => {
            eprintln!("mock-server: cannot listen: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    if writeln!(stdout, "{}", server.banner())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    eprintln!("mock-server: seed {}", options.seed);
    if options.until_stdin_closes {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        server.stop();
        return ExitCode::SUCCESS;
    }
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn args(list: &[&str]) -> impl Iterator<Item = String> {
        list.iter()
            .map(|arg| (*arg).to_owned())
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn options() {
        let options = parse(args(&[
            "--port",
            "4000",
            "--seed",
            "9",
            "--until-stdin-closes",
        ]))
        .unwrap_or_else(|error| unreachable!("{error}"));
        assert_eq!(
            (
                options.port,
                options.control_port,
                options.seed,
                options.until_stdin_closes
            ),
            (4000, 0, 9, true)
        );
        let defaults = parse(args(&[])).unwrap_or_else(|error| unreachable!("{error}"));
        assert_eq!((defaults.port, defaults.seed), (0, 1));
        for bad in [
            &["--port"][..],
            &["--port", "70000"],
            &["--seed", "-1"],
            &["--control-port", "x"],
            &["--verbose"],
        ] {
            assert!(parse(args(bad)).is_err(), "{bad:?}");
        }
        assert_eq!(parse(args(&["--help"])).err(), Some(String::new()));
    }
}
