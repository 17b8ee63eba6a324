//! Every kind of message between walink clients through walink-sim, as the structured content
//! the client reports (docs/content.md): replies, reactions, edits, revokes, and polls whose
//! votes open with the poll's secret and are counted, in a 1:1 chat and in a group, also after
//! the voter's host restarted from its store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use prost::Message as _;
use walink_core::client::{Command, CommandError, CommandOutput, Config, Event, IncomingMessage};
use walink_core::client::{PollVote, State};
use walink_core::noise::payload::{ClientProfile, WebVersion};
use walink_core::proto::wa;
use walink_sim::noise_server::ChainSpec;
use walink_sim::sim::{Faults, World};

const T0: u64 = 1_780_000_000_000;
const ALICE: &str = "15551234567";
const BOB: &str = "15557654321";
const ALICE_JID: &str = "15551234567@s.whatsapp.net";
const BOB_JID: &str = "15557654321@s.whatsapp.net";

fn config() -> Config {
    Config {
        trust_root: ChainSpec::default().trust_root(),
        ..Config::new(ClientProfile::new(
            WebVersion::new(2, 3000, 1_023_456_789),
            "walink",
        ))
    }
}

/// Links one walink client to `account` by QR.
fn link(world: &mut World, account: &str) -> usize {
    world
        .link_by_qr(config(), account)
        .unwrap_or_else(|| panic!("{account} links by QR"))
}

/// Alice and Bob with one walink client each.
fn world(seed: u64) -> (World, usize, usize) {
    let mut world = World::new(seed, T0, Faults::none());
    world.server.create_account(ALICE, "Alice").unwrap();
    world.server.create_account(BOB, "Bob").unwrap();
    let alice = link(&mut world, ALICE);
    let bob = link(&mut world, BOB);
    (world, alice, bob)
}

/// Runs `command` on `client` to its end.
fn run(world: &mut World, client: usize, command: Command) -> Result<CommandOutput, CommandError> {
    let before = world.clients[client].events.len();
    let id = world.command(client, command).unwrap();
    let done = |w: &World| {
        w.clients[client].events[before..]
            .iter()
            .find_map(|e| match e {
                Event::CommandDone { id: done, result } if *done == id => Some(result.clone()),
                _ => None,
            })
    };
    assert!(world.run_until(world.now + 20_000, |w| done(w).is_some()));
    done(world).unwrap()
}

/// Sends `message` from `client` to `to`; its message id.
fn send(world: &mut World, client: usize, to: &str, message: &wa::Message) -> String {
    match run(
        world,
        client,
        Command::SendMessage {
            to: to.to_owned(),
            message: message.encode_to_vec(),
        },
    ) {
        Ok(CommandOutput::MessageSent { id }) => id,
        other => panic!("send failed: {other:?}"),
    }
}

/// The message `id` as `client` received it (waiting for it).
fn received(world: &mut World, client: usize, id: &str) -> IncomingMessage {
    let find = |w: &World| {
        w.clients[client].events.iter().find_map(|e| match e {
            Event::Message(m) if m.id == id => Some((**m).clone()),
            _ => None,
        })
    };
    assert!(
        world.run_until(world.now + 10_000, |w| find(w).is_some()),
        "client {client} never got {id}"
    );
    find(world).unwrap()
}

fn text(text: &str) -> wa::Message {
    wa::Message {
        conversation: Some(text.into()),
        ..Default::default()
    }
}

fn poll(name: &str, options: &[&str], selectable: u32) -> wa::Message {
    wa::Message {
        poll_creation_message_v3: Some(Box::new(wa::message::PollCreationMessage {
            name: Some(name.into()),
            options: options
                .iter()
                .map(|option| wa::message::poll_creation_message::Option {
                    option_name: Some((*option).into()),
                    option_hash: None,
                })
                .collect(),
            selectable_options_count: Some(selectable),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// The vote `client` counted last, waiting for one on `poll_id` after `from` events.
fn counted(world: &mut World, client: usize, from: usize, poll_id: &str) -> PollVote {
    let find = |w: &World| {
        w.clients[client].events[from..]
            .iter()
            .rev()
            .find_map(|e| match e {
                Event::Message(m) => m.poll_vote.clone().filter(|v| v.poll_id == poll_id),
                _ => None,
            })
    };
    assert!(
        world.run_until(world.now + 10_000, |w| find(w).is_some()),
        "client {client} counted no vote on {poll_id}"
    );
    find(world).unwrap()
}

/// The LID user the server gave `client`'s account at pairing.
fn lid_of(world: &World, client: usize) -> String {
    world.clients[client]
        .events
        .iter()
        .find_map(|e| match e {
            Event::Paired { lid: Some(lid), .. } => Some(lid.user.clone()),
            _ => None,
        })
        .unwrap()
}

/// A vote's tally by option name, voters by user (the LID form, known for both accounts here).
fn tally(vote: &PollVote) -> Vec<(String, Vec<String>)> {
    vote.tally
        .iter()
        .map(|option| {
            (
                option.name.clone(),
                option.voters.iter().map(|v| v.user.clone()).collect(),
            )
        })
        .collect()
}

/// A reply, a reaction (added and removed), an edit and a revoke in a 1:1 chat: each arrives
/// as structured content, with the key of its target rewritten to the receiver's point of view
/// (the key the receiver's own copy of the target has).
#[test]
fn replies_reactions_edits_and_revokes_arrive_as_structured_content() {
    let (mut world, alice, bob) = world(31);
    let hello = send(&mut world, alice, BOB_JID, &text("hello"));
    let at_bob = received(&mut world, bob, &hello);
    assert_eq!(at_bob.text.as_deref(), Some("hello"));
    assert!(!at_bob.from_me);
    assert_eq!(at_bob.push_name.as_deref(), Some("Alice"));
    // The client attached a message secret, as WhatsApp Web does.
    let secret = at_bob.message.message_context_info.as_ref().unwrap();
    assert_eq!(secret.message_secret.as_ref().map(Vec::len), Some(32));
    let target = at_bob.key();
    assert_eq!(target.remote_jid.as_deref(), Some(ALICE_JID));
    assert_eq!(target.from_me, Some(false));

    // Bob replies, quoting it.
    let reply = wa::Message {
        extended_text_message: Some(Box::new(wa::message::ExtendedTextMessage {
            text: Some("hi Alice".into()),
            context_info: Some(Box::new(wa::ContextInfo {
                stanza_id: target.id.clone(),
                participant: Some(ALICE_JID.into()),
                quoted_message: Some(Box::new(text("hello"))),
                ..Default::default()
            })),
            ..Default::default()
        })),
        ..Default::default()
    };
    let reply_id = send(&mut world, bob, ALICE_JID, &reply);
    let got = received(&mut world, alice, &reply_id);
    assert_eq!(got.text.as_deref(), Some("hi Alice"));
    let context = got
        .message
        .extended_text_message
        .as_ref()
        .and_then(|m| m.context_info.as_ref())
        .unwrap();
    assert_eq!(context.stanza_id.as_deref(), Some(hello.as_str()));
    let quoted = context.quoted_message.as_deref().unwrap();
    assert_eq!(quoted.conversation.as_deref(), Some("hello"));

    // Bob reacts to Alice's message with the key as he has it; Alice gets it as her own.
    let react = |emoji: &str| wa::Message {
        reaction_message: Some(wa::message::ReactionMessage {
            key: Some(target.clone()),
            text: Some(emoji.into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let alice_key = wa::MessageKey {
        remote_jid: Some(BOB_JID.into()),
        from_me: Some(true),
        id: Some(hello.clone()),
        participant: None,
    };
    for emoji in ["👍", ""] {
        let id = send(&mut world, bob, ALICE_JID, &react(emoji));
        let got = received(&mut world, alice, &id);
        let reaction = got.message.reaction_message.as_ref().unwrap();
        assert_eq!(reaction.text.as_deref(), Some(emoji));
        assert_eq!(reaction.key.as_ref(), Some(&alice_key));
        // The client set the send time; an add-on carries no secret of its own.
        assert!(reaction.sender_timestamp_ms.is_some_and(|t| t > 0));
        assert!(got.message.message_context_info.is_none());
    }

    // Alice edits her message (whatsmeow's shape: the protocol message inside
    // `editedMessage`), then revokes it; Bob gets both with the key of his copy.
    let edit = wa::Message {
        edited_message: Some(Box::new(wa::message::FutureProofMessage {
            message: Some(Box::new(wa::Message {
                protocol_message: Some(Box::new(wa::message::ProtocolMessage {
                    key: Some(alice_key.clone()),
                    r#type: Some(14),
                    edited_message: Some(Box::new(text("hello, edited"))),
                    ..Default::default()
                })),
                ..Default::default()
            })),
        })),
        ..Default::default()
    };
    let edit_id = send(&mut world, alice, BOB_JID, &edit);
    let got = received(&mut world, bob, &edit_id);
    assert_eq!(got.wrappers, [walink_core::content::Wrapper::Edited]);
    let protocol = got.message.protocol_message.as_ref().unwrap();
    assert_eq!(protocol.r#type, Some(14));
    assert_eq!(protocol.key.as_ref(), Some(&target));
    assert!(protocol.timestamp_ms.is_some_and(|t| t > 0));
    let edited = protocol.edited_message.as_deref().unwrap();
    assert_eq!(edited.conversation.as_deref(), Some("hello, edited"));

    let revoke = wa::Message {
        protocol_message: Some(Box::new(wa::message::ProtocolMessage {
            key: Some(alice_key.clone()),
            r#type: Some(0),
            ..Default::default()
        })),
        ..Default::default()
    };
    let revoke_id = send(&mut world, alice, BOB_JID, &revoke);
    let got = received(&mut world, bob, &revoke_id);
    let protocol = got.message.protocol_message.as_ref().unwrap();
    assert_eq!(protocol.r#type, Some(0));
    assert_eq!(protocol.key.as_ref(), Some(&target));
    // The raw bytes hold what arrived: the target key as Alice wrote it.
    let raw = wa::Message::decode(got.raw.as_slice()).unwrap();
    assert_eq!(raw.protocol_message.unwrap().key, Some(alice_key));
}

/// A poll in a 1:1 chat: Bob votes, changes his vote, Alice votes on her own poll; each vote
/// opens at the other side with the poll's secret and is counted, and the voter's own tally
/// follows too. A vote for an option the poll lacks, or on a poll never seen, is refused.
#[test]
fn a_poll_vote_is_decrypted_and_counted() {
    let (mut world, alice, bob) = world(32);
    let (alice_lid, bob_lid) = (lid_of(&world, alice), lid_of(&world, bob));
    let poll_id = send(
        &mut world,
        alice,
        BOB_JID,
        &poll("lunch?", &["pizza", "sushi", "salad"], 0),
    );
    let at_bob = received(&mut world, bob, &poll_id);
    let created = walink_core::content::poll::creation(&at_bob.message).unwrap();
    assert_eq!(created.name.as_deref(), Some("lunch?"));

    let vote = |world: &mut World, client: usize, chat: &str, options: &[&str]| {
        run(
            world,
            client,
            Command::SendPollVote {
                chat: chat.to_owned(),
                poll_id: poll_id.clone(),
                options: options.iter().map(|o| (*o).to_owned()).collect(),
            },
        )
    };

    let before = world.clients[alice].events.len();
    assert!(matches!(
        vote(&mut world, bob, ALICE_JID, &["pizza", "salad"]),
        Ok(CommandOutput::MessageSent { .. })
    ));
    let got = counted(&mut world, alice, before, &poll_id);
    assert_eq!(got.voter.user, bob_lid);
    assert_eq!(got.selected, ["pizza", "salad"]);
    assert_eq!(
        tally(&got),
        [
            ("pizza".into(), vec![bob_lid.clone()]),
            ("sushi".into(), vec![]),
            ("salad".into(), vec![bob_lid.clone()]),
        ]
    );

    // Bob changes his mind; Alice votes on her own poll.
    let before = world.clients[alice].events.len();
    assert!(vote(&mut world, bob, ALICE_JID, &["sushi"]).is_ok());
    let got = counted(&mut world, alice, before, &poll_id);
    assert_eq!(got.selected, ["sushi"]);
    let before = world.clients[bob].events.len();
    assert!(vote(&mut world, alice, BOB_JID, &["sushi"]).is_ok());
    let got = counted(&mut world, bob, before, &poll_id);
    assert_eq!(got.voter.user, alice_lid);
    assert_eq!(
        tally(&got),
        [
            ("pizza".into(), vec![]),
            ("sushi".into(), vec![bob_lid.clone(), alice_lid.clone()]),
            ("salad".into(), vec![]),
        ]
    );

    assert_eq!(
        vote(&mut world, bob, ALICE_JID, &["tacos"]),
        Err(CommandError::InvalidMessage)
    );
    assert_eq!(
        run(
            &mut world,
            bob,
            Command::SendPollVote {
                chat: ALICE_JID.into(),
                poll_id: "3EB0NOSUCHPOLL".into(),
                options: vec!["pizza".into()],
            },
        ),
        Err(CommandError::UnknownPoll)
    );
}

/// A single-choice poll in a group, voted on after the voter's host restarted from its store:
/// the poll's secret and the votes so far come back from the poll records.
#[test]
fn a_group_poll_survives_a_restart_and_refuses_two_choices() {
    let (mut world, alice, bob) = world(33);
    let bob_lid = lid_of(&world, bob);
    let now = world.now;
    let group = world
        .server
        .create_group(now, ALICE, "walink", &[BOB])
        .unwrap()
        .to_string();
    let poll_id = send(
        &mut world,
        alice,
        &group,
        &poll("when?", &["mon", "tue"], 1),
    );
    let at_bob = received(&mut world, bob, &poll_id);
    assert_eq!(at_bob.chat.to_string(), group);
    assert_eq!(at_bob.key().participant.as_deref(), Some(ALICE_JID));

    world.crash(bob);
    assert!(world.run_until(world.now + 60_000, |w| w.client_state(bob)
        == Some(&State::Connected)));
    let vote = |options: &[&str]| Command::SendPollVote {
        chat: group.clone(),
        poll_id: poll_id.clone(),
        options: options.iter().map(|o| (*o).to_owned()).collect(),
    };
    assert_eq!(
        run(&mut world, bob, vote(&["mon", "tue"])),
        Err(CommandError::InvalidMessage)
    );
    let before = world.clients[alice].events.len();
    assert!(run(&mut world, bob, vote(&["tue"])).is_ok());
    let got = counted(&mut world, alice, before, &poll_id);
    assert_eq!(got.voter.user, bob_lid);
    assert_eq!(
        tally(&got),
        [
            ("mon".into(), vec![]),
            ("tue".into(), vec![bob_lid.clone()])
        ]
    );
}
