//! Part 2 of the demo: a walink client against the `mock-server` binary over a real websocket.
//!
//! 1. start `mock-server` (next to this binary) and create an account through its control API;
//! 2. start a fresh client with a file store; it shows a QR, the simulated phone scans it;
//! 3. pair-success, the 515 restart, login: the client reaches `Connected`;
//! 4. the host "restarts": the client is rebuilt from its file store and logs in without a QR;
//! 5. Alice's walink client and Bob's simulated phone exchange texts both ways;
//! 6. the phone unlinks the device: the client is logged out;
//! 7. a new client links the account again by pairing code (the phone types the code).

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use walink_core::client::{Command, CommandOutput, Config, Event, State};
use walink_core::noise::payload::{ClientProfile, WebVersion};
use walink_sim::driver::{Driver, DriverError, FileStore, StoreOptions};
use walink_sim::mock_server::http;
use walink_sim::mock_server::process::MockProcess;
use walink_sim::noise_server::ChainSpec;

/// The simulation's seed: the same seed gives the same server keys, numbers and LIDs.
const SEED: u64 = 2026;

/// How long one step may take before the demo gives up.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// Why the demo failed, as a readable sentence.
pub(crate) struct Failure(String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn fail(what: impl fmt::Display) -> Failure {
    Failure(what.to_string())
}

/// The transcript: every line with the milliseconds since the start.
struct Transcript {
    start: Instant,
}

impl Transcript {
    fn line(&self, who: &str, text: impl fmt::Display) {
        println!(
            "[{:>6} ms] {who:<7} {text}",
            self.start.elapsed().as_millis()
        );
    }
}

/// A call to the control endpoint: path and optional JSON body to the JSON answer.
type Control<'a> = dyn Fn(&str, Option<Value>) -> Result<Value, Failure> + 'a;

/// The store directory, removed when the demo ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs part 2; every step prints what it did.
pub(crate) fn run() -> Result<(), Failure> {
    println!("== part 2: pairing, login and messaging over a real websocket\n");
    let log = Transcript {
        start: Instant::now(),
    };
    let binary = std::env::current_exe()
        .map_err(fail)?
        .with_file_name(format!("mock-server{}", std::env::consts::EXE_SUFFIX));
    let server = MockProcess::spawn(&binary, SEED).map_err(fail)?;
    log.line(
        "host",
        format!(
            "started mock-server (pid {}): {}",
            server.id(),
            server.banner
        ),
    );
    let control = |path: &str, body: Option<Value>| -> Result<Value, Failure> {
        let (status, value) = http::call(server.control_addr, path, body.as_ref())
            .map_err(|error| fail(format!("control {path}: {error}")))?;
        log.line("control", format!("{path} -> {status} {value}"));
        if status == 200 {
            Ok(value)
        } else {
            Err(fail(format!("control {path} answered {status}: {value}")))
        }
    };
    let account = control("/accounts", Some(json!({ "name": "Alice" })))?;
    let phone = account["phone"]
        .as_str()
        .ok_or_else(|| fail("the account has no phone number"))?
        .to_owned();

    let dir = TempDir(std::env::temp_dir().join(format!("walink-demo-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).map_err(fail)?;
    let store_path = dir.0.join("store");
    let config = || {
        let mut config = Config::new(ClientProfile::new(
            WebVersion::new(2, 3000, 1_045_649_367),
            "walink demo",
        ));
        // The simulation's certificate chain is signed by its test root; the client checks it
        // exactly as it checks WhatsApp's.
        config.trust_root = ChainSpec::default().trust_root();
        config
    };

    // A fresh client: keys, QR, scan, pair-success, 515 restart, login.
    let store = FileStore::open(&store_path, StoreOptions::default()).map_err(fail)?;
    let mut client = Driver::new(config(), store, &server.ws_url).map_err(fail)?;
    log.line("host", "new client with an empty file store");
    let qr = wait(&log, &mut client, "a QR code", |event| {
        matches!(event, Event::Qr { .. })
    })?;
    let Event::Qr { payload, .. } = qr else {
        return Err(fail("no QR"));
    };
    control(
        &format!("/accounts/{phone}/scan"),
        Some(json!({ "qr": payload })),
    )?;
    let paired = wait(&log, &mut client, "pairing", |event| {
        matches!(event, Event::Paired { .. })
    })?;
    let Event::Paired { jid, .. } = paired else {
        return Err(fail("not paired"));
    };
    wait(&log, &mut client, "login after the 515 restart", |event| {
        is_state(event, &State::Connected)
    })?;
    log.line(
        "host",
        format!(
            "logged in as {jid}; the store holds {} records",
            client.store().len()
        ),
    );
    control(&format!("/accounts/{phone}/devices"), None)?;
    control("/connections", None)?;

    // The host restarts: the client is rebuilt from its store and logs in without a QR.
    drop(client);
    log.line(
        "host",
        "host restart: the client is dropped and rebuilt from its store",
    );
    let store = FileStore::open(&store_path, StoreOptions::default()).map_err(fail)?;
    let mut client = Driver::new(config(), store, &server.ws_url).map_err(fail)?;
    let mut showed_qr = false;
    wait(&log, &mut client, "login from the store", |event| {
        showed_qr |= matches!(event, Event::Qr { .. });
        is_state(event, &State::Connected)
    })?;
    if showed_qr {
        return Err(fail("the restored client asked to pair again"));
    }
    log.line("host", "logged in again from the stored keys, no QR");

    messaging(&log, &mut client, &control, &phone, &jid.to_string())?;

    // The phone unlinks the device: 401 device_removed, the client ends logged out.
    control(
        &format!("/accounts/{phone}/remove-device"),
        Some(json!({ "device": jid.to_string() })),
    )?;
    wait(
        &log,
        &mut client,
        "logout after the device was removed",
        |event| is_state(event, &State::LoggedOut),
    )?;

    // Link again, this time by pairing code: the client asks for a code, the phone "types" it.
    drop(client);
    let code_store = dir.0.join("store-code");
    let store = FileStore::open(&code_store, StoreOptions::default()).map_err(fail)?;
    let mut client = Driver::new(config(), store, &server.ws_url).map_err(fail)?;
    log.line(
        "host",
        "a new client links the account again, by pairing code",
    );
    wait(&log, &mut client, "the pairing screen", |event| {
        matches!(event, Event::Qr { .. })
    })?;
    client
        .command(Command::PairWithCode {
            phone: format!("+{phone}"),
        })
        .map_err(fail)?;
    let Event::PairingCode { code } = wait(&log, &mut client, "a pairing code", |event| {
        matches!(event, Event::PairingCode { .. })
    })?
    else {
        return Err(fail("no pairing code"));
    };
    control(
        &format!("/accounts/{phone}/code"),
        Some(json!({ "code": code })),
    )?;
    wait(&log, &mut client, "pairing by code", |event| {
        matches!(event, Event::Paired { .. })
    })?;
    wait(&log, &mut client, "login after pairing by code", |event| {
        is_state(event, &State::Connected)
    })?;
    control(&format!("/accounts/{phone}/devices"), None)?;

    let (status, events) = http::call(server.control_addr, "/events", None)
        .map_err(|error| fail(format!("control /events: {error}")))?;
    if status != 200 {
        return Err(fail(format!("control /events answered {status}")));
    }
    log.line("control", "/events -> 200: the simulation's log");
    for event in events["events"].as_array().into_iter().flatten() {
        log.line("server", event.as_str().unwrap_or_default());
    }
    Ok(())
}

/// Alice's walink client and Bob's simulated phone exchange texts both ways.
fn messaging(
    log: &Transcript,
    client: &mut Driver,
    control: &Control<'_>,
    alice: &str,
    alice_device: &str,
) -> Result<(), Failure> {
    let bob = control("/accounts", Some(json!({ "name": "Bob" })))?;
    let bob_jid = bob["jid"]
        .as_str()
        .ok_or_else(|| fail("Bob's account has no JID"))?
        .to_owned();
    let bob_phone = bob["phone"].as_str().unwrap_or_default().to_owned();

    // Bob's phone writes first: the client decrypts and shows it.
    for text in ["Hi Alice! Bob's phone here.", "Are you on your laptop?"] {
        control(
            &format!("/accounts/{bob_phone}/send"),
            Some(json!({ "to": alice, "text": text })),
        )?;
        let event = wait(log, client, "Bob's text", |event| match event {
            Event::Message(message) => message.text.as_deref() == Some(text),
            Event::DecryptFailed(_) => true,
            _ => false,
        })?;
        if let Event::DecryptFailed(failure) = event {
            return Err(fail(format!(
                "{alice_device} could not decrypt: {failure:?}"
            )));
        }
    }

    // Alice answers from walink: Bob's phone decrypts it.
    for text in [
        "Hello Bob, this is Alice on walink",
        "Yes, offline and end to end.",
    ] {
        let id = client
            .command(Command::SendText {
                to: bob_jid.clone(),
                text: text.to_owned(),
            })
            .map_err(fail)?;
        log.line("host", format!("SendText to {bob_jid}: {text:?}"));
        let done = wait(
            log,
            client,
            "the send to finish",
            |event| matches!(event, Event::CommandDone { id: done, .. } if *done == id),
        )?;
        match done {
            Event::CommandDone {
                result: Ok(CommandOutput::MessageSent { id }),
                ..
            } => log.line("host", format!("sent as {id}")),
            other => return Err(fail(format!("sending failed: {other:?}"))),
        }
        // Keep the client running while the phone's inbox is asked.
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let inbox = control(&format!("/accounts/{bob_phone}/messages"), None)?;
            let received = inbox["messages"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|m| m["text"].as_str() == Some(text));
            if received {
                log.line("phone", format!("Bob's phone read {text:?}"));
                break;
            }
            if Instant::now() > deadline {
                return Err(fail(format!("Bob's phone never got {text:?}")));
            }
            pump(log, client, Duration::from_millis(200))?;
        }
    }
    Ok(())
}

/// Runs the client for `time`, printing its events.
fn pump(log: &Transcript, client: &mut Driver, time: Duration) -> Result<(), Failure> {
    let until = Instant::now() + time;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match client.next_event(left) {
            Ok(event) => log.line("client", describe(&event)),
            Err(DriverError::Deadline) => return Ok(()),
            Err(error) => return Err(fail(error)),
        }
    }
}

fn is_state(event: &Event, want: &State) -> bool {
    matches!(event, Event::State { state, .. } if state == want)
}

/// Runs the client until `want` holds for an event, printing every event on the way.
fn wait(
    log: &Transcript,
    client: &mut Driver,
    what: &str,
    want: impl FnMut(&Event) -> bool,
) -> Result<Event, Failure> {
    let event = client
        .wait_for(STEP_TIMEOUT, want, |event| {
            log.line("client", describe(event))
        })
        .map_err(|error| fail(format!("waiting for {what}: {error}")))?;
    log.line("client", describe(&event));
    Ok(event)
}

/// One event as a transcript line.
fn describe(event: &Event) -> String {
    match event {
        Event::State { state, reason } => format!("state {state:?} ({reason:?})"),
        Event::Qr {
            payload,
            expires_at,
        } => {
            let shown: String = payload.chars().take(48).collect();
            format!("QR {shown}... (until {expires_at})")
        }
        Event::Paired { jid, lid, .. } => match lid {
            Some(lid) => format!("paired as {jid} ({lid})"),
            None => format!("paired as {jid}"),
        },
        Event::Message(message) => format!(
            "{} {} from {}: {:?}",
            if message.history {
                "history message"
            } else {
                "message"
            },
            message.id,
            message.sender,
            message.text.as_deref().unwrap_or("(no text)")
        ),
        Event::HistoryConversation(chat) => format!(
            "history chat {} {:?} ({} unread)",
            chat.chat,
            chat.name.as_deref().unwrap_or(""),
            chat.unread_count
        ),
        Event::PushName(push) => format!("push name of {}: {:?}", push.jid, push.name),
        Event::HistorySync(chunk) => format!(
            "history chunk {} #{}: {} chats, {} messages, progress {:?}{}",
            chunk.sync_type.as_str(),
            chunk.chunk_order,
            chunk.conversations,
            chunk.messages,
            chunk.progress,
            chunk
                .failure
                .map(|f| format!(", failed: {f}"))
                .unwrap_or_default()
        ),
        Event::CommandDone { id, result } => format!("command {} done: {result:?}", id.as_u64()),
        Event::PairingCode { code } => format!("pairing code {code}"),
        Event::Receipt(receipt) => format!(
            "{} receipt from {} for {}",
            receipt.kind,
            receipt.sender,
            receipt.ids.join(", ")
        ),
        other => format!("{other:?}"),
    }
}
