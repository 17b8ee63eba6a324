//! `bench-memory`: the heap held per idle connected client, with many clients in one process.
//!
//! Pairs N walink clients (default 1,000: one account with its phone per client) with the
//! simulated server of walink-sim, brings every one to `Connected`, lets them idle (keepalives
//! only), then measures with a counting allocator the heap the clients hold: what dropping the
//! clients frees, the `Client` structs included. The server, the network and the harness's
//! stores and event logs are dropped or left out before the measurement, so they do not count.
//!
//! ```text
//! cargo run -p walink-sim --bin bench-memory -- [--clients N] [--idle-seconds S]
//! ```
//!
//! Exits non-zero when a client fails to connect or the figure passes the 64 KiB budget.

#![allow(clippy::print_stdout, clippy::print_stderr)]
#![warn(unreachable_pub)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::process::ExitCode;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::time::Instant;

use walink_core::client::{Client, Config, State};
use walink_core::noise::payload::{ClientProfile, WebVersion};
use walink_sim::noise_server::ChainSpec;
use walink_sim::sim::{Faults, World};

/// The budget per idle connected client (issue 6).
const BUDGET: usize = 64 * 1024;

/// Counts live heap bytes and the peak.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn note_growth(delta: isize) {
    let now = LIVE.fetch_add(delta, Ordering::Relaxed) + delta;
    if delta > 0 && now > 0 {
        PEAK.fetch_max(now as usize, Ordering::Relaxed);
    }
}

// SAFETY: forwards every call to the system allocator unchanged and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_growth(layout.size() as isize);
        // SAFETY: same layout, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_growth(layout.size() as isize);
        // SAFETY: same layout, forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same pointer and layout, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_growth(new_size as isize - layout.size() as isize);
        // SAFETY: same pointer and layout, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// The simulation's start time, Unix milliseconds.
const T0: u64 = 1_780_000_000_000;

const USAGE: &str = "usage: bench-memory [--clients N] [--idle-seconds S]
  --clients N        how many clients to pair and keep connected (default 1000)
  --idle-seconds S   simulated idle time after the last one connected (default 600)";

/// The parsed command line.
struct Options {
    clients: usize,
    idle_seconds: u64,
}

fn parse(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        clients: 1000,
        idle_seconds: 600,
    };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--clients" => {
                options.clients = value("--clients")?
                    .parse()
                    .map_err(|e| format!("--clients: {e}"))?
            }
            "--idle-seconds" => {
                options.idle_seconds = value("--idle-seconds")?
                    .parse()
                    .map_err(|e| format!("--idle-seconds: {e}"))?
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if options.clients == 0 {
        return Err("--clients must be at least 1".into());
    }
    Ok(options)
}

fn config() -> Config {
    Config {
        trust_root: ChainSpec::default().trust_root(),
        ..Config::new(ClientProfile::new(
            WebVersion::new(2, 3000, 1_023_456_789),
            "walink",
        ))
    }
}

fn phone_number(index: usize) -> String {
    format!("1555{:07}", index)
}

fn connected(world: &World) -> usize {
    (0..world.clients.len())
        .filter(|&i| world.client_state(i) == Some(&State::Connected))
        .count()
}

fn run(options: &Options) -> Result<(), String> {
    let n = options.clients;
    let started = Instant::now();
    let mut world = World::new(6, T0, Faults::none());
    for index in 0..n {
        world
            .server
            .create_account(&phone_number(index), "Bench")
            .map_err(|e| format!("account {index}: {e}"))?;
        world.add_client(config());
    }
    if world.clients.len() != n {
        return Err(format!(
            "only {} of {n} clients started",
            world.clients.len()
        ));
    }
    let showing_qr = |w: &World| w.clients.iter().all(|c| !c.qrs().is_empty());
    if !world.run_until(T0 + 60_000, showing_qr) {
        return Err("not every client showed a QR within a minute".into());
    }
    for index in 0..n {
        let qr = world.clients[index]
            .qrs()
            .last()
            .cloned()
            .ok_or_else(|| format!("client {index}: no QR"))?;
        let now = world.now;
        world
            .server
            .phone_scan_qr(now, &phone_number(index), &qr)
            .map_err(|e| format!("client {index}: scan: {e}"))?;
    }
    let deadline = world.now + 120_000;
    if !world.run_until(deadline, |w| connected(w) == n) {
        return Err(format!(
            "{} of {n} clients connected within two minutes",
            connected(&world)
        ));
    }
    let paired_at = started.elapsed();
    world.run_for(options.idle_seconds * 1000);
    let idle = connected(&world);
    if idle != n {
        return Err(format!(
            "{idle} of {n} clients still connected after idling"
        ));
    }
    let records: usize = world.clients.iter().map(|c| c.store.len()).sum();

    // Keep the clients, drop everything else: the server, the network, the stores and event logs.
    let sims = std::mem::take(&mut world.clients);
    let mut clients: Vec<Client> = Vec::with_capacity(n);
    for sim in sims {
        clients.push(sim.client);
    }
    drop(world);
    let process_live = live();
    let before = live();
    drop(clients);
    let held = (before - live()).max(0) as usize;
    let per_client = held / n;

    println!("bench-memory: {n} clients paired and Connected in {paired_at:.1?} (wall)");
    println!(
        "  idle {} s (simulated), all {n} still Connected; {} records persisted per client on average",
        options.idle_seconds,
        records / n
    );
    println!(
        "  size_of::<Client>() = {} bytes (included below)",
        std::mem::size_of::<Client>()
    );
    println!(
        "  heap held by the {n} idle clients: {held} bytes ({:.1} MiB)",
        held as f64 / (1024.0 * 1024.0)
    );
    println!(
        "  per idle connected client: {per_client} bytes ({:.1} KiB; budget {} KiB)",
        per_client as f64 / 1024.0,
        BUDGET / 1024
    );
    println!(
        "  process heap with only the clients left: {process_live} bytes; peak during the run: {} bytes",
        PEAK.load(Ordering::Relaxed)
    );
    if per_client >= BUDGET {
        return Err(format!(
            "{per_client} bytes per idle client is over the {BUDGET}-byte budget"
        ));
    }
    Ok(())
}

fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("{error}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench-memory: {error}");
            ExitCode::FAILURE
        }
    }
}
