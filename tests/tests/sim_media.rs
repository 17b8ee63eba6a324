//! The simulated media hosts and the phone's history sync: the `media_conn` IQ, the blob store
//! (uploads checked against their hash), Baileys' download path on stored blobs, and the
//! initial history sync a new companion receives, read both by a hand-wired companion
//! (walink-core's Signal and media code) and by Baileys (`downloadHistory`,
//! `processHistoryMessage`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sim_support;

use std::io::Read as _;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use prost::Message as _;
use serde_json::{Value, json};
use sim_support::{Keys, Net, iq};
use walink_core::binary::{Jid, Node};
use walink_core::media::{self, Expected, MediaType};
use walink_core::pair::{AdvSecret, ClientType, KeyPair, qr_payload, verify_device_identity};
use walink_core::proto::wa;
use walink_core::signal::{IdentityKeyPair, PrivateKey, SessionRecord, unpad};
use walink_sim::oracle::Oracle;
use walink_sim::sim::server::MEDIA_AUTH_TTL_S;
use walink_sim::sim::{ConnId, ServerConfig, SimError, SimRng};

const USER: &str = "15550001111";
const BOB: &str = "15550002222";
const CAROL: &str = "15550003333";

fn net(seed: u8, history: bool) -> Net {
    let mut config = ServerConfig::new([seed; 32]);
    config.history_sync = history;
    let mut net = Net::with_config(config);
    net.server.create_account(USER, "Alice").unwrap();
    net
}

fn pair_and_login(net: &mut Net, keys: &Keys) -> (u16, ConnId) {
    let conn = net.connect(keys, 20, keys.registration_payload());
    let pair_device = net.take(conn, "iq");
    let refs: Vec<String> = pair_device
        .child("pair-device")
        .unwrap()
        .children_by_tag("ref")
        .map(|r| String::from_utf8(r.content_bytes().unwrap().to_vec()).unwrap())
        .collect();
    net.send(
        conn,
        &iq(pair_device.attr_str("id").unwrap(), "result", "md", vec![]),
    );
    let adv = AdvSecret::new([20; 32]);
    let noise = KeyPair::from_private(keys.noise.private_key());
    let qr = qr_payload(&refs[0], &noise, &keys.identity, &adv, ClientType::Chrome);
    net.server.phone_scan_qr(net.now, USER, &qr).unwrap();
    let success = net.take(conn, "iq");
    let pair = success.child("pair-success").unwrap();
    let identity = pair
        .child("device-identity")
        .unwrap()
        .content_bytes()
        .unwrap();
    let device = pair
        .child("device")
        .unwrap()
        .attr_jid("jid")
        .unwrap()
        .device;
    let verified = verify_device_identity(identity, &adv, &keys.identity, &[7; 64]).unwrap();
    net.send(
        conn,
        &iq(
            success.attr_str("id").unwrap(),
            "result",
            "md",
            vec![
                Node::new("pair-device-sign").children_from([Node::new("device-identity")
                    .attr("key-index", verified.key_index.to_string())
                    .bytes(verified.reply)]),
            ],
        ),
    );
    assert_eq!(net.take(conn, "stream:error").attr_str("code"), Some("515"));

    let conn = net.connect(keys, 21, keys.login_payload(USER, device));
    let _ = net.take(conn, "success");
    net.send(conn, &iq("a1", "set", "passive", vec![Node::new("active")]));
    assert_eq!(net.take(conn, "iq").attr_str("type"), Some("result"));
    let _ = net.take(conn, "ib"); // edge routing
    (device, conn)
}

/// The companion's signed prekey (seed 10 + 1, as `Keys::new(10)` makes it).
struct CompanionPreKeys;

impl walink_core::signal::PreKeySource for CompanionPreKeys {
    fn signed_pre_key(
        &self,
        id: walink_core::signal::SignedPreKeyId,
    ) -> Option<walink_core::signal::KeyPair> {
        (id.0 == 1)
            .then(|| walink_core::signal::KeyPair::from_private(PrivateKey::from_bytes([11; 32])))
    }

    fn pre_key(&self, _: walink_core::signal::PreKeyId) -> Option<walink_core::signal::KeyPair> {
        None
    }
}

/// Alice's phone history before her companion pairs: three texts from Bob, one from Carol
/// (her inbox), then one she sends Bob. Returns the id and time of the one she sent.
fn fill_inbox(net: &mut Net) -> (String, u64) {
    net.server.create_account(BOB, "Bob").unwrap();
    net.server.create_account(CAROL, "Carol").unwrap();
    let mut sent = None;
    for (i, (from, to, text)) in [
        (BOB, USER, "bob one"),
        (CAROL, USER, "carol one"),
        (BOB, USER, "bob two"),
        (BOB, USER, "bob three"),
        (USER, BOB, "alice to bob"),
    ]
    .into_iter()
    .enumerate()
    {
        net.now += 60_000 * (i as u64 + 1);
        let id = net.server.phone_send_text(net.now, from, to, text).unwrap();
        net.pump();
        if from == USER {
            sent = Some((id, net.now / 1000));
        }
    }
    assert_eq!(net.server.phone_messages(USER).unwrap().len(), 4);
    sent.unwrap()
}

/// Decrypts the offline `<message>` stanzas the companion got and returns the plaintexts.
fn decrypt_all(net: &mut Net, conn: ConnId, keys: &Keys, count: usize) -> Vec<(Node, wa::Message)> {
    let identity = IdentityKeyPair::from_private(PrivateKey::from_bytes(keys.identity_private));
    let mut rng = SimRng::from_u64(3);
    let mut session = SessionRecord::new();
    (0..count)
        .map(|_| {
            let stanza = net.take(conn, "message");
            let enc = stanza.child("enc").unwrap();
            let bytes = enc.content_bytes().unwrap();
            let plain = match enc.attr_str("type") {
                Some("pkmsg") => {
                    session
                        .decrypt_pre_key_message(
                            bytes,
                            &identity,
                            4242,
                            &CompanionPreKeys,
                            &mut rng,
                        )
                        .unwrap()
                        .plaintext
                }
                _ => session.decrypt_message(bytes, &mut rng).unwrap(),
            };
            let message = wa::Message::decode(unpad(&plain).unwrap()).unwrap();
            (stanza, message)
        })
        .collect()
}

fn inflate(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn media_conn_answers_auth_ttl_and_hosts() {
    let mut net = net(1, false);
    let keys = Keys::new(10);
    let (_, conn) = pair_and_login(&mut net, &keys);
    net.send(conn, &iq("m1", "set", "w:m", vec![Node::new("media_conn")]));
    let reply = net.take(conn, "iq");
    assert_eq!(reply.attr_str("id"), Some("m1"));
    assert_eq!(reply.attr_str("type"), Some("result"));
    let media_conn = reply.child("media_conn").unwrap();
    let auth = media_conn.attr_str("auth").unwrap().to_owned();
    assert!(!auth.is_empty());
    assert_eq!(media_conn.attr_str("ttl"), Some("300"));
    assert!(media_conn.attr_str("auth_ttl").is_some());
    let hosts: Vec<&str> = media_conn
        .children_by_tag("host")
        .map(|h| h.attr_str("hostname").unwrap())
        .collect();
    assert_eq!(hosts, ["mmg.whatsapp.net"]);
    assert!(net.server.media_auth_valid(net.now, &auth));
    assert!(!net.server.media_auth_valid(net.now, "forged"));
    assert!(
        !net.server
            .media_auth_valid(net.now + MEDIA_AUTH_TTL_S * 1000, &auth)
    );
    // A second request gets a different token; the first stays valid.
    net.send(conn, &iq("m2", "set", "w:m", vec![Node::new("media_conn")]));
    let second = net.take(conn, "iq");
    let auth2 = second
        .child("media_conn")
        .unwrap()
        .attr_str("auth")
        .unwrap();
    assert_ne!(auth2, auth);
    assert!(net.server.media_auth_valid(net.now, &auth));
}

#[test]
fn uploads_are_checked_against_their_hash_and_download_byte_for_byte() {
    let mut net = net(2, false);
    let media_key = [5u8; 32];
    let plain: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
    let (file, hashes) = media::encrypt(&media_key, MediaType::Image, &plain).unwrap();

    // A token that is not the blob's hash, a tampered blob, an unknown kind: refused.
    let wrong = URL_SAFE_NO_PAD.encode(hashes.file_sha256);
    assert_eq!(
        net.server.upload_blob("image", &wrong, &file),
        Err(SimError::BlobHashMismatch)
    );
    let mut tampered = file.clone();
    tampered[0] ^= 1;
    let token = URL_SAFE_NO_PAD.encode(hashes.file_enc_sha256);
    assert_eq!(
        net.server.upload_blob("image", &token, &tampered),
        Err(SimError::BlobHashMismatch)
    );
    assert!(matches!(
        net.server.upload_blob("../etc", &token, &file),
        Err(SimError::UnknownMediaKind(_))
    ));
    assert_eq!(net.server.blob_count(), 0);

    // whatsmeow's padded URL-safe token and Baileys' standard base64 both work.
    let path = net.server.upload_blob("image", &token, &file).unwrap();
    let standard = STANDARD.encode(hashes.file_enc_sha256);
    let path2 = net.server.upload_blob("image", &standard, &file).unwrap();
    assert_ne!(path, path2);
    assert!(path.starts_with("/v/"));
    assert_eq!(net.server.download_blob(&path).unwrap(), file);
    assert_eq!(
        net.server
            .download_blob(&format!("https://mmg.whatsapp.net{path}"))
            .unwrap(),
        file
    );
    assert_eq!(net.server.download_blob("/v/sim/image/none.enc"), None);
    // A client's own download parameters after the direct path (whatsmeow's `hash`, `mms-type`,
    // `__wa-mms`) do not change what the media host serves: it matches the path.
    let with_parameters = format!(
        "https://mmg.whatsapp.net{path}&hash={}&mms-type=image&__wa-mms=",
        URL_SAFE_NO_PAD.encode(hashes.file_enc_sha256)
    );
    assert_eq!(net.server.download_blob(&with_parameters).unwrap(), file);
    let bare = path.split_once('?').unwrap().0;
    assert_eq!(net.server.download_blob(bare).unwrap(), file);
    let back = net.server.download_blob(&path2).unwrap();
    let expected = Expected {
        file_enc_sha256: Some(&hashes.file_enc_sha256),
        file_sha256: Some(&hashes.file_sha256),
    };
    assert_eq!(
        media::decrypt(&media_key, MediaType::Image, &back, expected).unwrap(),
        plain
    );
}

#[test]
fn baileys_downloads_and_decrypts_a_stored_blob() {
    let mut net = net(3, false);
    let mut oracle = Oracle::spawn("history.mjs").unwrap();
    for (len, kind, name) in [
        (0usize, MediaType::Image, "image"),
        (1000, MediaType::Document, "document"),
        (70_000, MediaType::Video, "video"),
    ] {
        let media_key = [len as u8 ^ 0x5a; 32];
        let plain: Vec<u8> = (0..len).map(|i| (i * 13 + 1) as u8).collect();
        let (file, hashes) = media::encrypt(&media_key, kind, &plain).unwrap();
        let token = URL_SAFE_NO_PAD.encode(hashes.file_enc_sha256);
        let path = net.server.upload_blob(name, &token, &file).unwrap();
        let stored = net.server.download_blob(&path).unwrap();
        oracle
            .call(
                "serve",
                json!({ "blobs": { path.clone(): hex::encode(&stored) } }),
            )
            .unwrap();
        let theirs = oracle
            .call(
                "download",
                json!({ "mediaKey": hex::encode(media_key), "directPath": path, "type": name }),
            )
            .unwrap();
        assert_eq!(
            hex::decode(theirs["plaintext"].as_str().unwrap()).unwrap(),
            plain,
            "{name}"
        );
        assert_eq!(
            theirs["url"],
            json!(format!("mmg.whatsapp.net{path}")),
            "Baileys fetched the direct path from the default host"
        );
    }
}

/// The companion pairs, logs in and finds the phone's two history notifications in its offline
/// queue; it downloads each blob, decrypts it with walink-core's media code and reads the
/// conversations.
#[test]
fn a_new_companion_receives_and_decrypts_the_history_sync() {
    let mut net = net(4, true);
    let (sent_id, sent_at) = fill_inbox(&mut net);
    let keys = Keys::new(10);
    let (device, conn) = pair_and_login(&mut net, &keys);
    let messages = decrypt_all(&mut net, conn, &keys, 2);
    let marker = net.take(conn, "ib");
    assert_eq!(
        marker.child("offline").unwrap().attr_str("count"),
        Some("2")
    );
    let blobs = net.server.history_blobs(USER).to_vec();
    assert_eq!(blobs.len(), 2);
    assert_eq!(net.server.blob_count(), 2);

    let mut histories = Vec::new();
    for ((stanza, message), blob) in messages.iter().zip(&blobs) {
        assert_eq!(stanza.attr_str("category"), Some("peer"));
        assert_eq!(
            stanza.attr_jid("from"),
            Some(Jid::new(USER, "s.whatsapp.net"))
        );
        assert_eq!(stanza.attr_str("id"), Some(blob.message_id.as_str()));
        assert_eq!(stanza.attr_str("offline"), Some("1"));
        let protocol = message.protocol_message.as_ref().unwrap();
        assert_eq!(
            protocol.r#type,
            Some(wa::message::protocol_message::Type::HistorySyncNotification as i32)
        );
        let note = protocol.history_sync_notification.as_ref().unwrap();
        assert_eq!(note.direct_path.as_deref(), Some(blob.direct_path.as_str()));
        assert_eq!(note.chunk_order, Some(1));
        let file = net.server.download_blob(&blob.direct_path).unwrap();
        let expected = Expected {
            file_enc_sha256: note.file_enc_sha256.as_deref(),
            file_sha256: note.file_sha256.as_deref(),
        };
        let compressed = media::decrypt(
            note.media_key.as_deref().unwrap(),
            MediaType::History,
            &file,
            expected,
        )
        .unwrap();
        assert_eq!(note.file_length, Some(compressed.len() as u64));
        let history = wa::HistorySync::decode(inflate(&compressed).as_slice()).unwrap();
        assert_eq!(history.sync_type, note.sync_type);
        histories.push(history);
    }

    use wa::message::HistorySyncType;
    let texts = |c: &wa::Conversation| -> Vec<String> {
        c.messages
            .iter()
            .map(|m| {
                let m = m.message.as_ref().unwrap();
                m.message.as_ref().unwrap().conversation.clone().unwrap()
            })
            .collect()
    };
    let bob = format!("{BOB}@s.whatsapp.net");
    let carol = format!("{CAROL}@s.whatsapp.net");

    let bootstrap = &histories[0];
    assert_eq!(
        bootstrap.sync_type,
        Some(HistorySyncType::InitialBootstrap as i32)
    );
    let ids: Vec<&str> = bootstrap
        .conversations
        .iter()
        .map(|c| c.id.as_deref().unwrap())
        .collect();
    assert_eq!(
        ids,
        [bob.as_str(), carol.as_str()],
        "most recent chat first"
    );
    assert_eq!(
        texts(&bootstrap.conversations[0]),
        ["alice to bob", "bob three"]
    );
    assert_eq!(texts(&bootstrap.conversations[1]), ["carol one"]);
    assert_eq!(bootstrap.conversations[0].unread_count, Some(3));
    let own = bootstrap.conversations[0].messages[0]
        .message
        .as_ref()
        .unwrap();
    assert_eq!(
        own.key.as_ref().unwrap().id.as_deref(),
        Some(sent_id.as_str())
    );
    assert_eq!(own.key.as_ref().unwrap().from_me, Some(true));
    assert_eq!(own.message_timestamp, Some(sent_at));
    let received = bootstrap.conversations[0].messages[1]
        .message
        .as_ref()
        .unwrap();
    let inbox = net.server.phone_messages(USER).unwrap();
    assert_eq!(
        received.key.as_ref().unwrap().id.as_deref(),
        Some(inbox[3].id.as_str())
    );
    assert_eq!(received.key.as_ref().unwrap().from_me, Some(false));
    assert_eq!(received.message_timestamp, Some(inbox[3].timestamp));

    let recent = &histories[1];
    assert_eq!(recent.sync_type, Some(HistorySyncType::Recent as i32));
    assert_eq!(recent.progress, Some(100));
    assert_eq!(recent.conversations.len(), 1);
    assert_eq!(recent.conversations[0].id.as_deref(), Some(bob.as_str()));
    assert_eq!(texts(&recent.conversations[0]), ["bob two", "bob one"]);
    let _ = device;
}

/// Baileys reads the same notifications: its own protobuf definitions decode the phone's
/// message, `downloadHistory` fetches the blob from the store, decrypts and inflates it, and
/// `processHistoryMessage` yields the phone's chats and messages.
#[test]
fn baileys_processes_the_phones_history_sync() {
    let mut net = net(5, true);
    let (sent_id, sent_at) = fill_inbox(&mut net);
    let keys = Keys::new(10);
    let (device, _conn) = pair_and_login(&mut net, &keys);
    let address = Jid::device(USER, device, "s.whatsapp.net").to_string();
    let blobs = net.server.history_blobs(USER).to_vec();
    assert_eq!(blobs.len(), 2);
    let stored: serde_json::Map<String, Value> = blobs
        .iter()
        .map(|b| {
            let bytes = net.server.download_blob(&b.direct_path).unwrap();
            (b.direct_path.clone(), json!(hex::encode(bytes)))
        })
        .collect();
    let mut oracle = Oracle::spawn("history.mjs").unwrap();
    oracle.call("serve", json!({ "blobs": stored })).unwrap();
    let inbox = net.server.phone_messages(USER).unwrap().to_vec();

    let mut seen = Vec::new();
    for (blob, expected_type) in blobs.iter().zip([0, 3]) {
        let account = net.server.account(USER).unwrap();
        let message = account.phone.sent(&blob.message_id, &address).unwrap();
        let theirs = oracle
            .call(
                "history",
                json!({ "message": hex::encode(message.encode_to_vec()) }),
            )
            .unwrap();
        assert_eq!(
            theirs["protocolType"],
            json!(5),
            "HISTORY_SYNC_NOTIFICATION"
        );
        assert_eq!(theirs["notification"]["syncType"], json!(expected_type));
        assert_eq!(theirs["syncType"], json!(expected_type));
        assert_eq!(theirs["notification"]["chunkOrder"], json!(1));
        assert_eq!(
            theirs["notification"]["directPath"],
            json!(blob.direct_path)
        );
        for m in theirs["messages"].as_array().unwrap() {
            seen.push((
                m["id"].as_str().unwrap().to_owned(),
                m["remoteJid"].as_str().unwrap().to_owned(),
                m["text"].as_str().unwrap().to_owned(),
                m["timestamp"].as_u64().unwrap(),
                m["fromMe"].as_bool().unwrap(),
            ));
        }
        if expected_type == 0 {
            let chats: Vec<&str> = theirs["chats"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap())
                .collect();
            assert_eq!(
                chats,
                [
                    format!("{BOB}@s.whatsapp.net"),
                    format!("{CAROL}@s.whatsapp.net")
                ]
            );
        } else {
            assert_eq!(theirs["progress"], json!(100));
        }
    }
    // Every message of the phone's inbox, exactly once, as the phone received it.
    seen.sort();
    let mut want: Vec<_> = inbox
        .iter()
        .map(|m| {
            (
                m.id.clone(),
                m.chat.clone(),
                m.text.clone().unwrap(),
                m.timestamp,
                false,
            )
        })
        .collect();
    want.push((
        sent_id,
        format!("{BOB}@s.whatsapp.net"),
        "alice to bob".to_owned(),
        sent_at,
        true,
    ));
    want.sort();
    assert_eq!(seen, want);
}

#[test]
fn history_sync_can_be_switched_off() {
    let mut net = net(6, false);
    fill_inbox(&mut net);
    let keys = Keys::new(10);
    let (_, conn) = pair_and_login(&mut net, &keys);
    let marker = net.take(conn, "ib");
    assert_eq!(
        marker.child("offline").unwrap().attr_str("count"),
        Some("0")
    );
    assert!(net.server.history_blobs(USER).is_empty());
    assert_eq!(net.server.blob_count(), 0);
}

#[test]
fn history_sync_is_deterministic() {
    let run = |seed| {
        let mut net = net(seed, true);
        fill_inbox(&mut net);
        let keys = Keys::new(10);
        let _ = pair_and_login(&mut net, &keys);
        net.server.transcript_hash()
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
}

/// walink's own Client, paired through the World with 5 days of history asked for: the phone
/// leaves out what is older (checked in its blobs, read here with walink-core's media code), the
/// client downloads each blob through its fetch output, reports the conversation and its
/// messages as history, and acknowledges every chunk with a `hist_sync` receipt.
#[test]
fn walink_client_reads_the_history_sized_by_the_days_it_asked_for() {
    use walink_core::client::history::HistorySyncType;
    use walink_core::client::{Config, Event, State};
    use walink_core::noise::payload::{ClientProfile, WebVersion};
    use walink_sim::noise_server::ChainSpec;
    use walink_sim::sim::{Faults, World};

    const T0: u64 = 1_780_000_000_000;
    const DAY: u64 = 86_400_000;
    let mut world = World::new(9, T0, Faults::none());
    world.server.set_history_sync(true);
    world.server.create_account(USER, "Alice").unwrap();
    world.server.create_account(BOB, "Bob").unwrap();
    let now = world.now;
    world
        .server
        .phone_send_text(now, BOB, USER, "ten days before pairing")
        .unwrap();
    world.flush();
    world.run_for(8 * DAY);
    let now = world.now;
    world
        .server
        .phone_send_text(now, BOB, USER, "two days before pairing")
        .unwrap();
    world.flush();
    world.run_for(2 * DAY);
    let start = world.now;
    let mut profile = ClientProfile::new(WebVersion::new(2, 3000, 1_023_456_789), "walink");
    profile.history.days = Some(5);
    let config = Config {
        trust_root: ChainSpec::default().trust_root(),
        ..Config::new(profile)
    };
    let client = world.add_client(config);
    assert!(world.run_until(start + 10_000, |w| !w.clients[client].qrs().is_empty()));
    let qr = world.clients[client].qrs().last().unwrap().clone();
    let now = world.now;
    world.server.phone_scan_qr(now, USER, &qr).unwrap();
    world.flush();
    let chunks = |w: &World| {
        w.clients[client]
            .events
            .iter()
            .filter(|e| matches!(e, Event::HistorySync(_)))
            .count()
    };
    let done = world.run_until(start + 60_000, |w| {
        w.client_state(client) == Some(&State::Connected) && chunks(w) >= 2
    });
    let events = world.clients[client].events.clone();
    assert!(done, "{events:#?}");
    assert!(!events.iter().any(|e| matches!(e, Event::DecryptFailed(_))));
    let history: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) if m.history => Some(m.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(history.len(), 1, "{history:#?}");
    assert_eq!(history[0].text.as_deref(), Some("two days before pairing"));
    assert_eq!(history[0].chat.to_string(), format!("{BOB}@s.whatsapp.net"));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::HistoryConversation(c) if c.chat.user == BOB
            && c.sync_type == HistorySyncType::InitialBootstrap
    )));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::PushName(p) if p.name == "Bob"))
    );
    // The notifications themselves are not reported as messages.
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Message(m) if !m.history))
    );
    let progress: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::HistorySync(p) => Some(p.clone()),
            _ => None,
        })
        .collect();
    assert!(
        progress.iter().all(|p| p.failure.is_none()),
        "{progress:#?}"
    );
    assert_eq!(progress.last().unwrap().progress, Some(100));

    // What the phone sent: nothing older than the days asked for, every chunk acknowledged.
    let blobs = world.server.history_blobs(USER).to_vec();
    assert_eq!(blobs.len(), 2);
    assert!(blobs.iter().all(|b| b.acknowledged), "{blobs:#?}");
    let account = world.server.account(USER).unwrap();
    let device = *account.devices.keys().find(|d| **d != 0).unwrap();
    let address = Jid::device(USER, device, "s.whatsapp.net").to_string();
    let mut texts = Vec::new();
    for blob in &blobs {
        let message = account.phone.sent(&blob.message_id, &address).unwrap();
        let note = message
            .protocol_message
            .as_ref()
            .unwrap()
            .history_sync_notification
            .clone()
            .unwrap();
        let file = world.server.download_blob(&blob.direct_path).unwrap();
        let compressed = media::decrypt(
            note.media_key.as_deref().unwrap(),
            MediaType::History,
            &file,
            Expected {
                file_enc_sha256: note.file_enc_sha256.as_deref(),
                file_sha256: note.file_sha256.as_deref(),
            },
        )
        .unwrap();
        let history = wa::HistorySync::decode(inflate(&compressed).as_slice()).unwrap();
        for conversation in &history.conversations {
            for entry in &conversation.messages {
                let info = entry.message.as_ref().unwrap();
                texts.push(info.message.as_ref().unwrap().conversation.clone().unwrap());
            }
        }
    }
    assert_eq!(texts, ["two days before pairing"]);

    // Older messages of Bob's chat, asked for on demand: the phone answers with an ON_DEMAND
    // chunk holding the message the days left out.
    let oldest = history[0].clone();
    world
        .command(
            client,
            walink_core::client::Command::RequestHistory {
                chat: format!("{BOB}@s.whatsapp.net"),
                oldest_id: oldest.id.clone(),
                oldest_from_me: false,
                oldest_timestamp: oldest.timestamp,
                count: 10,
            },
        )
        .unwrap();
    let on_demand = |w: &World| {
        w.clients[client]
            .events
            .iter()
            .any(|e| matches!(e, Event::HistorySync(p) if p.sync_type == HistorySyncType::OnDemand))
    };
    let now = world.now;
    assert!(world.run_until(now + 30_000, on_demand));
    let older: Vec<String> = world.clients[client]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) if m.history => m.text.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(
        older,
        ["two days before pairing", "ten days before pairing"],
        "{:#?}",
        world.clients[client].events
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Any blob uploaded with its hash as the token downloads byte for byte; flipping any bit
    /// of the blob, or of the token's hash, is refused and stores nothing.
    #[test]
    fn uploads_round_trip_and_refuse_any_altered_byte(
        blob in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048),
        kind in proptest::sample::select(walink_sim::sim::server::MEDIA_KINDS),
        flip in proptest::prelude::any::<usize>(),
    ) {
        use sha2::Digest as _;
        let mut server = walink_sim::sim::Server::new(ServerConfig::new([9; 32]));
        let hash = sha2::Sha256::digest(&blob);
        let token = URL_SAFE_NO_PAD.encode(hash);
        if !blob.is_empty() {
            let mut altered = blob.clone();
            altered[flip % blob.len()] ^= 1 << (flip % 8);
            proptest::prop_assert_eq!(
                server.upload_blob(kind, &token, &altered),
                Err(SimError::BlobHashMismatch)
            );
        }
        let mut wrong = hash.to_vec();
        wrong[flip % 32] ^= 1 << (flip % 8);
        proptest::prop_assert_eq!(
            server.upload_blob(kind, &STANDARD.encode(&wrong), &blob),
            Err(SimError::BlobHashMismatch)
        );
        proptest::prop_assert_eq!(server.blob_count(), 0);
        let path = server.upload_blob(kind, &token, &blob).unwrap();
        proptest::prop_assert_eq!(server.download_blob(&path), Some(blob));
    }
}

#[test]
fn the_store_drops_its_oldest_blob_beyond_its_bound() {
    use sha2::Digest as _;
    use walink_sim::sim::server::MAX_BLOBS;
    let mut server = walink_sim::sim::Server::new(ServerConfig::new([10; 32]));
    let mut paths = Vec::new();
    for i in 0..=MAX_BLOBS as u32 {
        let blob = i.to_be_bytes();
        let token = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(blob));
        paths.push(server.upload_blob("document", &token, &blob).unwrap());
    }
    assert_eq!(server.blob_count(), MAX_BLOBS);
    assert_eq!(server.download_blob(&paths[0]), None);
    assert_eq!(
        server.download_blob(&paths[1]),
        Some(1u32.to_be_bytes().to_vec())
    );
    assert_eq!(
        server.download_blob(paths.last().unwrap()),
        Some((MAX_BLOBS as u32).to_be_bytes().to_vec())
    );
}
