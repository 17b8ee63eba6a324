//! The mock server end to end: walink's client over a real websocket (the native driver and
//! its file store) against the simulation, driven through the HTTP control endpoint; once
//! in-process and once against the `mock-server` binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use walink_core::client::{Command, CommandOutput, Config, Event, State};
use walink_core::noise::payload::{ClientProfile, WebVersion};
use walink_sim::driver::{Driver, FileStore, StoreOptions};
use walink_sim::mock_server::MockServer;
use walink_sim::mock_server::http;
use walink_sim::mock_server::process::MockProcess;
use walink_sim::mock_server::sim_backend::SimBackend;
use walink_sim::noise_server::ChainSpec;

const STEP: Duration = Duration::from_secs(20);

fn config() -> Config {
    let mut config = Config::new(ClientProfile::new(
        WebVersion::new(2, 3000, 1_045_649_367),
        "walink test",
    ));
    config.trust_root = ChainSpec::default().trust_root();
    config
}

/// A fresh store file for one test, removed when dropped.
struct StoreFile(PathBuf);

impl StoreFile {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("walink-mock-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        StoreFile(dir)
    }

    fn path(&self) -> PathBuf {
        self.0.join("store")
    }
}

impl Drop for StoreFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn call(addr: SocketAddr, path: &str, body: Option<Value>) -> (u16, Value) {
    http::call(addr, path, body.as_ref()).expect("control answers")
}

fn ok(addr: SocketAddr, path: &str, body: Option<Value>) -> Value {
    let (status, value) = call(addr, path, body);
    assert_eq!(status, 200, "{path}: {value}");
    value
}

fn is_state(event: &Event, want: &State) -> bool {
    matches!(event, Event::State { state, .. } if state == want)
}

fn wait(driver: &mut Driver, what: &str, want: impl FnMut(&Event) -> bool) -> Event {
    let mut seen = Vec::new();
    match driver.wait_for(STEP, want, |event| seen.push(format!("{event:?}"))) {
        Ok(event) => event,
        Err(error) => panic!(
            "waiting for {what}: {error}\nevents: {seen:#?}\ndriver log: {:#?}",
            driver.log
        ),
    }
}

/// Creates an account, runs a fresh client to its QR, scans it, and waits for the login after
/// the 515 restart. Returns the client and its device JID.
fn pair(control: SocketAddr, ws_url: &str, store: &StoreFile, phone: &str) -> (Driver, String) {
    let store = FileStore::open(store.path(), StoreOptions::default()).unwrap();
    assert!(store.is_empty());
    let mut config = config();
    // The mock server is the media host too.
    config.media_origin = format!("http://{control}");
    let mut driver = Driver::new(config, store, ws_url).unwrap();
    let Event::Qr { payload, .. } = wait(&mut driver, "a QR", |e| matches!(e, Event::Qr { .. }))
    else {
        unreachable!()
    };
    assert_eq!(payload.split(',').count(), 5, "{payload}");
    let scanned = ok(
        control,
        &format!("/accounts/{phone}/scan"),
        Some(json!({ "qr": payload })),
    );
    assert!(scanned["conn"].is_u64(), "{scanned}");
    let Event::Paired { jid, .. } = wait(&mut driver, "pairing", |e| {
        matches!(e, Event::Paired { .. })
    }) else {
        unreachable!()
    };
    wait(&mut driver, "login", |e| is_state(e, &State::Connected));
    assert!(jid.to_string().starts_with(&format!("{phone}:")), "{jid}");
    (driver, jid.to_string())
}

#[test]
fn pairs_logs_in_restarts_and_is_removed_in_process() {
    let server = MockServer::start(SimBackend::new(11), 0, 0).unwrap();
    let control = server.control_addr();
    let account = ok(
        control,
        "/accounts",
        Some(json!({ "phone": "15550001111" })),
    );
    assert_eq!(account["jid"], "15550001111@s.whatsapp.net");
    let store = StoreFile::new("in-process");
    let (mut driver, jid) = pair(control, &server.ws_url(), &store, "15550001111");
    assert!(driver.store().len() > 1, "keys and identity are stored");

    let devices = ok(control, "/accounts/15550001111/devices", None);
    let listed: Vec<&str> = devices["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["jid"].as_str())
        .collect();
    assert!(listed.contains(&jid.as_str()), "{devices}");
    let connections = ok(control, "/connections", None);
    assert!(
        connections["connections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["device"].as_str() == jid.split('@').next()),
        "{connections}"
    );

    // Another account's phone writes: the client decrypts the text.
    ok(
        control,
        "/accounts",
        Some(json!({ "phone": "15550001112" })),
    );
    ok(
        control,
        "/accounts/15550001112/send",
        Some(json!({ "to": "15550001111", "text": "over the wire" })),
    );
    let Event::Message(message) = wait(&mut driver, "a text", |e| {
        matches!(e, Event::Message(_) | Event::DecryptFailed(_))
    }) else {
        panic!("the text did not decrypt")
    };
    assert_eq!(message.text.as_deref(), Some("over the wire"));
    assert_eq!(message.sender.to_string(), "15550001112@s.whatsapp.net");

    // And the client answers: the other phone decrypts it.
    let id = driver
        .command(Command::SendText {
            to: "15550001112@s.whatsapp.net".into(),
            text: "and back".into(),
        })
        .unwrap();
    let done = wait(
        &mut driver,
        "the send",
        |e| matches!(e, Event::CommandDone { id: done, .. } if *done == id),
    );
    let Event::CommandDone {
        result: Ok(CommandOutput::MessageSent { id: sent }),
        ..
    } = done
    else {
        panic!("send failed: {done:?}")
    };
    let deadline = std::time::Instant::now() + STEP;
    loop {
        let inbox = ok(control, "/accounts/15550001112/messages", None);
        let found = inbox["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == json!(sent))
            .cloned();
        if let Some(found) = found {
            assert_eq!(found["text"], "and back", "{inbox}");
            assert_eq!(found["from"], json!(jid), "{inbox}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never arrived: {inbox}"
        );
        let _ = driver.next_event(Duration::from_millis(50));
    }

    // A 515 injected through the control endpoint: the client reconnects and logs in again.
    ok(
        control,
        "/stream-error",
        Some(json!({ "device": jid, "code": 515 })),
    );
    wait(&mut driver, "a new login after 515", |e| {
        is_state(e, &State::Connected)
    });

    // The phone unlinks the device: the client is logged out.
    ok(
        control,
        "/accounts/15550001111/remove-device",
        Some(json!({ "device": jid })),
    );
    wait(&mut driver, "logout", |e| is_state(e, &State::LoggedOut));
    let (status, _) = call(
        control,
        "/accounts/15550001111/remove-device",
        Some(json!({ "device": jid })),
    );
    assert_eq!(status, 404, "the device is gone");
}

#[test]
fn the_binary_serves_a_pairing_and_answers_control_errors() {
    let server = MockProcess::spawn(std::path::Path::new(env!("CARGO_BIN_EXE_mock-server")), 3)
        .expect("mock-server starts");
    let control = server.control_addr;
    assert_eq!(ok(control, "/health", None), json!({ "ok": true }));
    let account = ok(control, "/accounts", Some(json!({})));
    let phone = account["phone"].as_str().unwrap().to_owned();
    let (status, _) = call(control, "/accounts", Some(json!({ "phone": phone })));
    assert_eq!(status, 409, "the account exists already");
    let (status, _) = call(
        control,
        "/accounts/19999999999/scan",
        Some(json!({ "qr": "a,b,c,d,e" })),
    );
    assert_eq!(status, 404, "no such account");
    let (status, _) = call(
        control,
        &format!("/accounts/{phone}/scan"),
        Some(json!({ "qr": "not a qr" })),
    );
    assert_eq!(status, 409, "the phone refuses a malformed QR");

    let store = StoreFile::new("binary");
    let (driver, _) = pair(control, &server.ws_url, &store, &phone);
    drop(driver);

    // Rebuilt from the file store, the client logs in without pairing again.
    let store = FileStore::open(store.path(), StoreOptions::default()).unwrap();
    let mut driver = Driver::new(config(), store, &server.ws_url).unwrap();
    let mut showed_qr = false;
    driver
        .wait_for(
            STEP,
            |e| is_state(e, &State::Connected),
            |e| showed_qr |= matches!(e, Event::Qr { .. }),
        )
        .unwrap();
    assert!(!showed_qr);
}

#[test]
fn the_same_seed_gives_the_same_accounts() {
    let lids = |seed| {
        let server = MockProcess::spawn(
            std::path::Path::new(env!("CARGO_BIN_EXE_mock-server")),
            seed,
        )
        .expect("mock-server starts");
        (0..3)
            .map(|_| ok(server.control_addr, "/accounts", Some(json!({}))))
            .collect::<Vec<_>>()
    };
    let first = lids(8);
    assert_eq!(first, lids(8));
    assert_ne!(first, lids(9));
}

#[test]
fn pairs_by_code_through_the_control_endpoint() {
    let server = MockServer::start(SimBackend::new(12), 0, 0).unwrap();
    let control = server.control_addr();
    ok(
        control,
        "/accounts",
        Some(json!({ "phone": "15550002222" })),
    );
    let store = StoreFile::new("code");
    let mut driver = Driver::new(
        config(),
        FileStore::open(store.path(), StoreOptions::default()).unwrap(),
        &server.ws_url(),
    )
    .unwrap();
    wait(&mut driver, "a QR", |e| matches!(e, Event::Qr { .. }));
    driver
        .command(Command::PairWithCode {
            phone: "+15550002222".into(),
        })
        .unwrap();
    let Event::PairingCode { code } = wait(&mut driver, "a pairing code", |e| {
        matches!(e, Event::PairingCode { .. })
    }) else {
        unreachable!()
    };
    assert_eq!(code.len(), 8, "{code}");
    let (status, _) = call(
        control,
        "/accounts/15550009999/code",
        Some(json!({ "code": code })),
    );
    assert_eq!(status, 404, "no companion asked for a code for that number");
    ok(
        control,
        "/accounts/15550002222/code",
        Some(json!({ "code": code })),
    );
    let Event::Paired { jid, .. } = wait(&mut driver, "pairing", |e| {
        matches!(e, Event::Paired { .. })
    }) else {
        unreachable!()
    };
    assert!(jid.to_string().starts_with("15550002222:"), "{jid}");
    wait(&mut driver, "login", |e| is_state(e, &State::Connected));
}

#[test]
fn phones_exchange_texts_through_the_control_endpoint() {
    let server = MockServer::start(SimBackend::new(13), 0, 0).unwrap();
    let control = server.control_addr();
    ok(
        control,
        "/accounts",
        Some(json!({ "phone": "15550003333" })),
    );
    ok(
        control,
        "/accounts",
        Some(json!({ "phone": "15550004444" })),
    );
    let sent = ok(
        control,
        "/accounts/15550003333/send",
        Some(json!({ "to": "15550004444", "text": "hello from 3333" })),
    );
    let id = sent["id"].as_str().unwrap().to_owned();
    ok(
        control,
        "/accounts/15550004444/send",
        Some(json!({ "to": "15550003333@s.whatsapp.net", "text": "and back" })),
    );
    let inbox = ok(control, "/accounts/15550004444/messages", None);
    let messages = inbox["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{inbox}");
    assert_eq!(messages[0]["id"], json!(id));
    assert_eq!(messages[0]["text"], "hello from 3333");
    assert_eq!(messages[0]["error"], Value::Null);
    assert!(
        messages[0]["from"]
            .as_str()
            .unwrap()
            .starts_with("15550003333")
    );
    let inbox = ok(control, "/accounts/15550003333/messages", None);
    assert_eq!(inbox["messages"][0]["text"], "and back", "{inbox}");
    let (status, _) = call(
        control,
        "/accounts/15550003333/send",
        Some(json!({ "to": "19990000000", "text": "nobody" })),
    );
    assert_eq!(status, 404);
    let (status, _) = call(control, "/accounts/19990000000/messages", None);
    assert_eq!(status, 404);
}

#[test]
fn a_server_restart_and_a_refused_login_are_survived() {
    let server = MockServer::start(SimBackend::new(14), 0, 0).unwrap();
    let control = server.control_addr();
    ok(
        control,
        "/accounts",
        Some(json!({ "phone": "15550005555" })),
    );
    let store = StoreFile::new("restart");
    let (mut driver, _) = pair(control, &server.ws_url(), &store, "15550005555");
    // The next login is refused with 503; then the server restarts and drops the connection.
    ok(control, "/fail-next-login", Some(json!({ "reason": 503 })));
    assert_eq!(
        ok(control, "/restart", Some(json!({}))),
        json!({ "restarted": true })
    );
    let mut refused = false;
    driver
        .wait_for(
            Duration::from_secs(60),
            |e| is_state(e, &State::Connected),
            |e| {
                refused |= matches!(
                    e,
                    Event::State { reason, .. } if format!("{reason:?}").contains("503")
                );
            },
        )
        .unwrap();
    assert!(
        refused,
        "the 503 failure was seen before the login succeeded"
    );
    let events = ok(control, "/events", None);
    assert!(
        events["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().contains("LoginRefused")),
        "{events}"
    );
    let (status, _) = call(control, "/fail-next-login", Some(json!({ "reason": "x" })));
    assert_eq!(status, 400);
}

/// The media of a received message event.
fn download(driver: &mut Driver, message: &walink_core::client::IncomingMessage) -> Vec<u8> {
    let id = driver
        .command(Command::DownloadMedia {
            id: message.id.clone(),
            chat: message.chat.to_string(),
            sender: message.sender.to_string(),
            message: message.raw.clone(),
            sink: None,
        })
        .unwrap();
    match wait(
        driver,
        "the download",
        |e| matches!(e, Event::CommandDone { id: done, .. } if *done == id),
    ) {
        Event::CommandDone {
            result: Ok(CommandOutput::MediaDownloaded(data)),
            ..
        } => data.0,
        other => panic!("download: {other:?}"),
    }
}

#[test]
fn media_goes_up_and_down_through_the_media_hosts_and_expired_media_is_uploaded_again() {
    use base64::Engine as _;
    use walink_core::client::{MediaKind, OutgoingMedia, media_fields};

    let server = MockServer::start(SimBackend::new(17), 0, 0).unwrap();
    let control = server.control_addr();
    for phone in ["15550005555", "15550006666"] {
        ok(control, "/accounts", Some(json!({ "phone": phone })));
    }
    let (store_a, store_b) = (StoreFile::new("media-a"), StoreFile::new("media-b"));
    let (mut alice, _) = pair(control, &server.ws_url(), &store_a, "15550005555");
    let (mut bob, _) = pair(control, &server.ws_url(), &store_b, "15550006666");

    // Alice's client uploads a photo and sends it; Bob's client downloads it.
    let photo: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 253) as u8).collect();
    let send = alice
        .command(Command::SendMedia {
            to: "15550006666@s.whatsapp.net".into(),
            kind: MediaKind::Image,
            media: OutgoingMedia {
                data: photo.clone(),
                mimetype: "image/jpeg".into(),
                caption: Some("a photo".into()),
                width: Some(640),
                height: Some(480),
                ..Default::default()
            },
        })
        .unwrap();
    let Event::CommandDone { result, .. } = wait(
        &mut alice,
        "the send",
        |e| matches!(e, Event::CommandDone { id, .. } if *id == send),
    ) else {
        unreachable!()
    };
    let Ok(CommandOutput::MessageSent { id: sent_id }) = result else {
        panic!("{result:?}")
    };
    let Event::Message(received) = wait(
        &mut bob,
        "the photo",
        |e| matches!(e, Event::Message(m) if m.id == sent_id),
    ) else {
        unreachable!()
    };
    let image = received.message.image_message.as_ref().unwrap();
    assert_eq!(image.caption.as_deref(), Some("a photo"));
    assert_eq!(image.width, Some(640));
    assert_eq!(image.file_length, Some(photo.len() as u64));
    assert_eq!(download(&mut bob, &received), photo);

    // The media hosts stop taking the cached media_conn token: the upload's 401 makes the
    // client ask for a new media_conn, and the same upload goes through with it.
    ok(control, "/revoke-media-auth", Some(json!({})));
    let uploads_before = alice
        .fetched()
        .iter()
        .filter(|u| u.contains("/mms/image/"))
        .count();
    let again = alice
        .command(Command::SendMedia {
            to: "15550006666@s.whatsapp.net".into(),
            kind: MediaKind::Sticker,
            media: OutgoingMedia {
                data: b"RIFF webp".to_vec(),
                mimetype: "image/webp".into(),
                ..Default::default()
            },
        })
        .unwrap();
    let Event::CommandDone { result, .. } = wait(
        &mut alice,
        "the sticker",
        |e| matches!(e, Event::CommandDone { id, .. } if *id == again),
    ) else {
        unreachable!()
    };
    let Ok(CommandOutput::MessageSent { id: sticker_id }) = result else {
        panic!("{result:?}")
    };
    let uploads = alice
        .fetched()
        .iter()
        .filter(|u| u.contains("/mms/image/"))
        .count();
    assert_eq!(
        uploads - uploads_before,
        2,
        "a refused upload, then one with a new token"
    );
    let Event::Message(sticker) = wait(
        &mut bob,
        "the sticker",
        |e| matches!(e, Event::Message(m) if m.id == sticker_id),
    ) else {
        unreachable!()
    };
    assert_eq!(download(&mut bob, &sticker), b"RIFF webp");

    // The phone of Bob sends a voice note to Alice; her client downloads it, then again after
    // the hosts expired it: the phone uploads it again on her client's request.
    let voice = b"OggS voice note".repeat(1000);
    let sent = ok(
        control,
        "/accounts/15550006666/send-media",
        Some(json!({
            "to": "15550005555",
            "kind": "ptt",
            "data_base64": base64::engine::general_purpose::STANDARD.encode(&voice),
            "mimetype": "audio/ogg; codecs=opus",
        })),
    );
    let voice_id = sent["id"].as_str().unwrap().to_owned();
    let Event::Message(note) = wait(
        &mut alice,
        "the voice note",
        |e| matches!(e, Event::Message(m) if m.id == voice_id),
    ) else {
        unreachable!()
    };
    let fields = media_fields(&note.message).unwrap();
    assert_eq!(fields.kind, MediaKind::VoiceNote);
    assert_eq!(download(&mut alice, &note), voice);
    ok(
        control,
        "/expire-media",
        Some(json!({ "direct_path": fields.direct_path })),
    );
    let (status, _) = call(control, &fields.direct_path, None);
    assert_eq!(status, 404);
    assert_eq!(download(&mut alice, &note), voice);
    assert!(
        alice
            .fetched()
            .iter()
            .filter(|url| url.contains("/v/sim/audio/"))
            .count()
            >= 3,
        "{:?}",
        alice.fetched()
    );

    // An upload without a valid media_conn token is refused.
    let (status, _) = call(control, "/mms/image/AAAA?auth=forged", Some(json!({})));
    assert_eq!(status, 401);
}
