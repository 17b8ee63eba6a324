//! Known-answer vectors, bad-input tests and round-trip properties for the codec.
#![allow(clippy::unwrap_used)]

use std::borrow::Cow;

use proptest::prelude::*;

use super::*;
use crate::limits::{MAX_DECODED_NODES, MAX_INFLATED_NODE, MAX_NODE_DEPTH};

fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text.replace(' ', "")).unwrap()
}

fn jid(text: &str) -> Jid {
    text.parse().unwrap()
}

// --- Known answers: transport.md appendix A.1 and the Baileys capture in TOOLCHAIN.md. ---

#[test]
fn keepalive_iq() {
    let node = Node::new("iq")
        .attr("id", "1.2-3")
        .attr("xmlns", "w:p")
        .attr("type", "get")
        .attr("to", Jid::server_jid());
    let bytes = unhex("00 F8 09 19 08 FF 83 1B 2A 3F 16 57 04 29 11 FA 00 03");
    assert_eq!(encode(&node), bytes);
    assert_eq!(decode(&bytes).unwrap(), node);
    // The server JID as a string in Baileys' notation gives the same bytes.
    let as_text = Node::new("iq")
        .attr("id", "1.2-3")
        .attr("xmlns", "w:p")
        .attr("type", "get")
        .attr("to", "@s.whatsapp.net");
    assert_eq!(encode(&as_text), bytes);
}

#[test]
fn double_byte_tokens() {
    let node = Node::new("iq")
        .attr("xmlns", "passive")
        .attr("type", "set")
        .children_from([Node::new("active")]);
    let bytes = encode(&node);
    assert_eq!(bytes, unhex("00 F8 06 19 16 EC 18 04 5A F8 01 F8 01 EC 01"));
    assert_eq!(decode(&bytes).unwrap(), node);
}

#[test]
fn device_jids_use_ad_jid() {
    let device = Node::new("to").content(Content::Jid(jid("15551234567:12@s.whatsapp.net")));
    let bytes = encode(&device);
    assert!(bytes.ends_with(&unhex("F7 00 0C FF 86 15 55 12 34 56 7F")));
    assert_eq!(decode(&bytes).unwrap(), device);
    let lid = Node::new("to").attr("jid", "123456789012345:3@lid");
    let bytes = encode(&lid);
    assert!(bytes.ends_with(&unhex("F7 01 03 FF 88 12 34 56 78 90 12 34 5F")));
    assert_eq!(
        decode(&bytes).unwrap().attr_jid("jid"),
        Some(jid("123456789012345:3@lid"))
    );
}

#[test]
fn device_zero_and_hosted_follow_whatsapp_web() {
    let pair = encode(&Node::new("x").attr("jid", "98765:0@s.whatsapp.net"));
    assert!(pair.ends_with(&unhex("FA FF 83 98 76 5F 03")));
    let hosted = encode(&Node::new("x").attr("jid", "98765@hosted"));
    assert!(hosted.ends_with(&unhex("F7 80 00 FF 83 98 76 5F")));
    assert_eq!(
        decode(&hosted).unwrap().attr_jid("jid"),
        Some(jid("98765@hosted"))
    );
}

#[test]
fn messenger_and_interop_jids() {
    let node = Node::new("x")
        .attr("a", "98765:3@msgr")
        .attr("b", "7-42:300@interop");
    let bytes = encode(&node);
    let msgr_at = bytes.iter().position(|&b| b == 0xF6).unwrap();
    assert_eq!(
        bytes[msgr_at + 1..msgr_at + 8],
        [0xFF, 0x83, 0x98, 0x76, 0x5F, 0, 3]
    );
    assert!(bytes.contains(&0xF5));
    let decoded = decode(&bytes).unwrap();
    assert_eq!(decoded.attr_jid("a"), Some(jid("98765:3@msgr")));
    assert_eq!(decoded.attr_jid("b"), Some(jid("7-42:300@interop")));
}

#[test]
fn hex_packing_and_empty_string() {
    let bytes = encode(&Node::new("x").attr("id", "3EB0ABCDEF").attr("zz", ""));
    assert!(bytes.ends_with(&unhex("FB 05 3E B0 AB CD EF FC 02 7A 7A FC 00")));
}

#[test]
fn baileys_capture() {
    let bytes = unhex(
        "00f80a1908ff861234b5678a1f11fa000304291657f803f80156f8040e0cf70003ff8615551234567ffc04\
         010203faf80438fc03686578fb04deadbeeffc0b68656c6c6f20776f726c64",
    );
    let node = decode(&bytes).unwrap();
    assert_eq!(node.attr_jid("to"), Some(Jid::server_jid()));
    let user = node.child("user").unwrap();
    assert_eq!(
        user.attr_jid("jid"),
        Some(jid("15551234567:3@s.whatsapp.net"))
    );
    assert_eq!(user.content, Content::Bytes(vec![1, 2, 3, 0xFA]));
    assert_eq!(
        node.child("text").unwrap().attr_str("hex"),
        Some("DEADBEEF")
    );
    assert_eq!(
        node.child("text").unwrap().content_bytes(),
        Some(&b"hello world"[..])
    );
    assert_eq!(encode(&node), bytes);
}

#[test]
fn byte_lengths_8_20_32() {
    for (len, prefix) in [
        (255, vec![0xFC, 0xFF]),
        (256, vec![0xFD, 0x00, 0x01, 0x00]),
        ((1 << 20) - 1, vec![0xFD, 0x0F, 0xFF, 0xFF]),
        (1 << 20, vec![0xFE, 0x00, 0x10, 0x00, 0x00]),
    ] {
        let node = Node::new("iq").bytes(vec![7; len]);
        let bytes = encode(&node);
        assert_eq!(bytes[..4], [0, 0xF8, 0x02, 0x19]);
        assert_eq!(bytes[4..4 + prefix.len()], prefix[..]);
        assert_eq!(decode(&bytes).unwrap(), node);
    }
}

#[test]
fn list_16_and_empty_list() {
    let node = Node::new("list").children_from((0..300).map(|_| Node::new("item")));
    let bytes = encode(&node);
    assert_eq!(bytes[4..7], [0xF9, 0x01, 0x2C]);
    assert_eq!(decode(&bytes).unwrap(), node);
    let empty = Node::new("list").children_from([]);
    assert_eq!(encode(&empty)[4..], [0x00]);
    assert_eq!(decode(&encode(&empty)).unwrap(), empty);
}

#[test]
fn compressed_body() {
    let node = Node::new("iq").attr("id", "abc").bytes(vec![5; 1000]);
    let plain = encode(&node);
    let mut body = vec![0x02];
    body.extend(miniz_oxide::deflate::compress_to_vec_zlib(&plain[1..], 6));
    assert_eq!(decode(&body).unwrap(), node);
    assert_eq!(tape::encode(&tape::decode(&body).unwrap()).unwrap(), plain);
}

// --- Bad input: a typed error, never a panic. ---

fn err(hex_bytes: &str) -> DecodeError {
    decode(&unhex(hex_bytes)).unwrap_err()
}

#[test]
fn rejects_malformed_input() {
    assert_eq!(decode(&[]), Err(DecodeError::Empty));
    for unused in 240..=244u8 {
        assert_eq!(
            decode(&[0, 0xF8, 1, unused]),
            Err(DecodeError::InvalidTag(unused))
        );
    }
    assert_eq!(
        err("00 F8 02 19 FE FF FF FF FF"),
        DecodeError::UnexpectedEnd
    );
    assert_eq!(err("00 F8 02 19 FD 0F FF FF"), DecodeError::UnexpectedEnd);
    assert_eq!(err("00 F8 02 19 F9 FF FF"), DecodeError::UnexpectedEnd);
    assert_eq!(err("00 F9 FF FF 19"), DecodeError::UnexpectedEnd);
    assert_eq!(err("00 F8 01 FC 02 FF FE"), DecodeError::InvalidUtf8);
    assert_eq!(err("00 F8 01 FF 01 C1"), DecodeError::InvalidNibble(12));
    assert_eq!(err("00 F8 00"), DecodeError::EmptyNode);
    assert_eq!(err("00 00"), DecodeError::EmptyNode);
    assert_eq!(err("00 F8 01 FC 00"), DecodeError::EmptyNode);
    assert_eq!(err("00 19"), DecodeError::InvalidTag(0x19));
    assert_eq!(err("00 F8 01 F8"), DecodeError::InvalidTag(0xF8));
    assert_eq!(err("00 F8 01 19 00"), DecodeError::TrailingBytes(1));
    assert_eq!(
        err("00 F8 03 19 08 FA FA 00 03 03"),
        DecodeError::InvalidJid
    );
    assert_eq!(err("00 F8 03 19 08 FA 00 00"), DecodeError::InvalidJid);
    assert_eq!(err("02 00 01 02"), DecodeError::Inflate);
}

#[test]
fn every_truncation_is_an_error() {
    let node = Node::new("iq")
        .attr("id", "1.2-3")
        .attr("to", jid("15551234567:12@s.whatsapp.net"))
        .attr("b", "98765:3@msgr")
        .attr("c", "7-42:300@interop")
        .children_from([Node::new("enc").attr("v", "2").bytes(vec![1; 300])]);
    let bytes = encode(&node);
    for len in 0..bytes.len() {
        assert!(
            decode(&bytes[..len]).is_err(),
            "prefix of {len} bytes decoded"
        );
        assert!(tape::decode(&bytes[..len]).is_err());
    }
}

#[test]
fn rejects_too_deep_nesting() {
    let mut bytes = vec![0];
    for _ in 0..=MAX_NODE_DEPTH {
        bytes.extend_from_slice(&[0xF8, 0x02, 0x19, 0xF8, 0x01]);
    }
    bytes.extend_from_slice(&[0xF8, 0x01, 0x19]);
    assert_eq!(decode(&bytes), Err(DecodeError::TooDeep));
    assert_eq!(tape::decode(&bytes), Err(DecodeError::TooDeep));
}

#[test]
fn rejects_too_many_nodes() {
    // 300 lists of 65535 one-byte-tag nodes would be 19.6 M nodes from 59 MB; the budget stops
    // the decoder after MAX_DECODED_NODES.
    let lists = MAX_DECODED_NODES / 65_535 + 2;
    let mut bytes = vec![0, 0xF8, 0x02, 0x19, 0xF9];
    bytes.extend_from_slice(&u16::try_from(lists).unwrap().to_be_bytes());
    for _ in 0..lists {
        bytes.extend_from_slice(&[0xF8, 0x02, 0x19, 0xF9, 0xFF, 0xFF]);
        for _ in 0..65_535 {
            bytes.extend_from_slice(&[0xF8, 0x01, 0x19]);
        }
    }
    assert_eq!(decode(&bytes), Err(DecodeError::TooManyNodes));
}

#[test]
fn rejects_zlib_bombs() {
    let plain = vec![0u8; MAX_INFLATED_NODE + 1];
    let mut body = vec![0x02];
    body.extend(miniz_oxide::deflate::compress_to_vec_zlib(&plain, 1));
    assert_eq!(decode(&body), Err(DecodeError::InflatedTooLarge));
}

/// A node of `children` children of 32,767 attributes (two one-byte tokens each): 64 KiB of
/// wire per child, an `Attr` of 80-odd bytes per two bytes once decoded.
fn attribute_flood(children: u16) -> Vec<u8> {
    let mut node = vec![0xF8, 0x02, 0x19, 0xF9];
    node.extend_from_slice(&children.to_be_bytes());
    for _ in 0..children {
        node.extend_from_slice(&[0xF9, 0xFF, 0xFF, 0x19]);
        for _ in 0..32_767 {
            node.extend_from_slice(&[0x0A, 0x0B]);
        }
    }
    node
}

#[test]
fn a_compressed_attribute_flood_is_refused_within_its_budget() {
    // 16 MiB of attributes compress to a few KB: the budget of those few KB stops the
    // inflation long before the limit.
    let mut body = vec![0x02];
    body.extend(miniz_oxide::deflate::compress_to_vec_zlib(
        &attribute_flood(250),
        9,
    ));
    assert!(body.len() < 64 * 1024, "{} bytes", body.len());
    assert_eq!(decode(&body), Err(DecodeError::InflatedTooLarge));
    assert_eq!(tape::decode(&body), Err(DecodeError::InflatedTooLarge));
    // Uncompressed, the tree of the same attributes is more than its budget of 60 bytes per
    // byte allows only when it is denser than any real stanza: two children decode.
    let mut plain = vec![0x00];
    plain.extend(attribute_flood(2));
    assert!(decode(&plain).is_ok());
    // Inflating within the budget but decoding past it: a tree budget error.
    let mut small = vec![0x02];
    small.extend(miniz_oxide::deflate::compress_to_vec_zlib(
        &attribute_flood(10),
        9,
    ));
    let inflated = 10 * 65_540;
    // The doubling buffers of the inflation cost at most four times what they hold.
    assert!(crate::limits::decode_budget(small.len()) > 4 * inflated);
    assert_eq!(decode(&small), Err(DecodeError::OverBudget));
    // The tape of the same body costs a few bytes per attribute: it decodes.
    assert!(tape::decode(&small).is_ok());
}

// --- The tape used by the bindings. ---

#[test]
fn tape_rejects_malformed_tapes() {
    assert_eq!(tape::encode(&[]), Err(tape::TapeError::UnexpectedEnd));
    assert_eq!(
        tape::encode(&[4, 0, 3]),
        Err(tape::TapeError::InvalidKind(4))
    );
    assert_eq!(tape::encode(&[0, 0, 0]), Err(tape::TapeError::EmptyTag));
    assert_eq!(tape::encode(&[0, 0, 1]), Err(tape::TapeError::EmptyTag));
    assert_eq!(
        tape::encode(&[0, 0, 0xD9, 0x13]),
        Err(tape::TapeError::InvalidToken(1260))
    );
    assert_eq!(
        tape::encode(&[0, 0, 4, 0xFF, 0xFE]),
        Err(tape::TapeError::InvalidUtf8)
    );
    assert_eq!(
        tape::encode(&[0, 0, 51, 0]),
        Err(tape::TapeError::TrailingBytes)
    );
    assert_eq!(
        tape::encode(&[2, 0, 51, 5, 1]),
        Err(tape::TapeError::UnexpectedEnd)
    );
    assert_eq!(
        tape::encode(&[0, 0xFF, 0xFF, 0x03, 51]),
        Err(tape::TapeError::TooLarge)
    );
    let table = tape::token_table();
    assert_eq!(table.split('\0').count(), 1260);
    assert_eq!(table.split('\0').nth(25), Some("iq"));
}

// --- Round trips of random nodes. ---

const SERVERS: [&str; 12] = [
    DEFAULT_USER_SERVER,
    HIDDEN_USER_SERVER,
    GROUP_SERVER,
    BROADCAST_SERVER,
    NEWSLETTER_SERVER,
    HOSTED_SERVER,
    HOSTED_LID_SERVER,
    MESSENGER_SERVER,
    INTEROP_SERVER,
    LEGACY_USER_SERVER,
    BOT_SERVER,
    "example.server",
];

/// Strings that hit every string form: tokens, nibble and hex packing, raw text.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        (1u16..1260).prop_map(|id| tokens::by_id(id).unwrap().to_owned()),
        "[0-9.-]{1,127}",
        "[0-9A-F]{1,127}",
        "[^@]{0,40}",
        "[a-z0-9 ]{128,300}",
    ]
}

/// JIDs in every form, as the wire gives them back.
fn any_jid() -> impl Strategy<Value = Jid> {
    (
        prop::sample::select(&SERVERS[..]),
        "[0-9a-zA-Z.-]{0,16}",
        any::<u8>(),
        any::<u16>(),
        any::<u16>(),
    )
        .prop_map(|(server, user, agent, device, integrator)| {
            let mut jid = Jid::new(user, server);
            match server {
                DEFAULT_USER_SERVER | HIDDEN_USER_SERVER => {
                    jid.device = device % 256;
                    if server == DEFAULT_USER_SERVER
                        && jid.device > 0
                        && ![1, 128, 129].contains(&agent)
                    {
                        jid.agent = agent;
                    }
                }
                HOSTED_SERVER | HOSTED_LID_SERVER => jid.device = device % 256,
                MESSENGER_SERVER => jid.device = device,
                INTEROP_SERVER => {
                    jid.device = device;
                    jid.integrator = integrator;
                }
                _ => {}
            }
            jid
        })
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => text().prop_map(|text| Value::Str(Cow::Owned(text))),
        1 => any_jid().prop_map(Value::Jid),
    ]
}

/// Content as decoding returns it: string content only in a form that is not `BINARY_*`.
fn leaf_content() -> impl Strategy<Value = Content> {
    prop_oneof![
        Just(Content::None),
        prop::collection::vec(any::<u8>(), 0..600).prop_map(Content::Bytes),
        (1u16..1260).prop_map(|id| Content::Str(Cow::Borrowed(tokens::by_id(id).unwrap()))),
        "[0-9.-]{1,127}".prop_map(|text| Content::Str(Cow::Owned(text))),
        "[0-9A-F]{1,127}".prop_map(|text| Content::Str(Cow::Owned(text))),
        any_jid().prop_map(Content::Jid),
    ]
}

fn any_node() -> impl Strategy<Value = Node> {
    let leaf = (
        text().prop_filter("tags are not empty", |tag| !tag.is_empty()),
        prop::collection::vec((text(), value()), 0..6),
        leaf_content(),
    )
        .prop_map(|(tag, attrs, content)| Node {
            tag: Cow::Owned(tag),
            attrs: attrs
                .into_iter()
                .map(|(key, value)| Attr {
                    key: Cow::Owned(key),
                    value,
                })
                .collect(),
            content,
        });
    leaf.prop_recursive(4, 64, 8, |inner| {
        (inner.clone(), prop::collection::vec(inner, 0..8)).prop_map(|(mut node, children)| {
            node.content = Content::Nodes(children);
            node
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn decode_inverts_encode(node in any_node()) {
        let bytes = encode(&node);
        prop_assert_eq!(decode(&bytes).unwrap(), node);
    }

    #[test]
    fn tape_round_trip_gives_the_same_bytes(node in any_node()) {
        let bytes = encode(&node);
        let tape = tape::decode(&bytes).unwrap();
        prop_assert_eq!(tape::encode(&tape).unwrap(), bytes);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode(&bytes);
        let _ = tape::decode(&bytes);
        let _ = tape::encode(&bytes);
    }
}

#[test]
fn tape_can_reference_byte_content_in_the_body() {
    let node = Node::new("enc").attr("v", "2").bytes(vec![9; 300]);
    let body = encode(&node);
    let mut by_reference = Vec::new();
    tape::decode_into(&body, &mut by_reference, true).unwrap();
    // kind 4, 1 attribute, "enc", "v", "2", then offset and length of the 300 bytes.
    let offset = body.len() - 300;
    let mut expected = vec![4, 1];
    for token in ["enc", "v", "2"] {
        let id = tape::token_table()
            .split('\0')
            .position(|t| t == token)
            .unwrap();
        let head = u32::try_from(id).unwrap() << 1 | 1;
        expected.extend(if head < 0x80 {
            vec![head as u8]
        } else {
            vec![(head as u8) | 0x80, (head >> 7) as u8]
        });
    }
    expected.extend([u8::try_from(offset).unwrap(), 0xAC, 0x02]);
    assert_eq!(by_reference, expected);
    assert_eq!(body[offset..], [9; 300]);
    // A compressed body has no bytes to point at: content is copied (kind 2).
    let mut compressed = vec![0x02];
    compressed.extend(miniz_oxide::deflate::compress_to_vec_zlib(&body[1..], 6));
    let mut copied = Vec::new();
    tape::decode_into(&compressed, &mut copied, true).unwrap();
    assert_eq!(copied, tape::decode(&body).unwrap());
    assert_eq!(copied[0], 2);
}

#[test]
fn spliced_encode_leaves_room_for_host_held_bytes() {
    let node = Node::new("enc").attr("v", "2").bytes(vec![7; 3000]);
    let body = encode(&node);
    // The tape of the node with its content held by the host: kind 4, then only the length.
    let mut flat = tape::decode(&body).unwrap();
    flat[0] = 4;
    let content_at = flat.len() - 3000;
    flat.truncate(content_at);
    let mut out = Vec::new();
    let mut splices = Vec::new();
    tape::encode_spliced(&flat, &mut out, &mut splices).unwrap();
    assert_eq!(splices, vec![u32::try_from(out.len()).unwrap()]);
    out.extend_from_slice(&[7; 3000]);
    assert_eq!(out, body);
    // Plain tape encoding does not accept host-held bytes.
    assert_eq!(tape::encode(&flat), Err(tape::TapeError::InvalidKind(4)));
}

/// The prefix decode agrees with the whole-body decode for every prefix (of long bodies: the
/// first and last 64 and about 200 between): the same tape, the same error, or a request for the
/// whole body.
fn check_every_prefix(body: &[u8]) -> Result<(), TestCaseError> {
    let mut whole = Vec::new();
    let expected = tape::decode_into(body, &mut whole, true).map(|()| whole);
    let step = body.len() / 200 + 1;
    let cuts = (0..=body.len()).filter(|&cut| cut < 64 || cut + 64 > body.len() || cut % step == 0);
    for cut in cuts {
        let mut out = Vec::new();
        match tape::decode_prefix_into(&body[..cut], body.len(), &mut out) {
            Ok(tape::PrefixDecode::Complete) => prop_assert_eq!(Ok(&out), expected.as_ref()),
            Ok(tape::PrefixDecode::NeedWhole) => prop_assert!(cut < body.len()),
            Err(err) => prop_assert_eq!(Err(&err), expected.as_ref()),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn prefix_decode_agrees_with_whole_decode(node in any_node()) {
        check_every_prefix(&encode(&node))?;
    }

    #[test]
    fn prefix_decode_agrees_on_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..48)) {
        check_every_prefix(&bytes)?;
    }
}

#[test]
fn prefix_decode_needs_no_bytes_of_large_content() {
    let node = Node::new("iq").attr("type", "result").children_from([
        Node::new("enc").attr("v", "2").bytes(vec![5; 70_000]),
        Node::new("enc").attr("v", "2").bytes(vec![6; 300]),
    ]);
    let body = encode(&node);
    let mut whole = Vec::new();
    tape::decode_into(&body, &mut whole, true).unwrap();
    // The structure before the first content's bytes, and the second content's, is all it reads.
    let header = body.len() - 70_000 - 300 - 8;
    let mut out = Vec::new();
    assert_eq!(
        tape::decode_prefix_into(&body[..header], body.len(), &mut out),
        Ok(tape::PrefixDecode::NeedWhole)
    );
    let first_content = body.windows(3).position(|w| w == [5, 5, 5]).unwrap();
    assert_eq!(
        tape::decode_prefix_into(&body[..first_content], body.len(), &mut out),
        Ok(tape::PrefixDecode::NeedWhole)
    );
    // Without the second node's header, the decoder must ask for more; with everything but the
    // second content, it completes.
    let second_content = body.len() - 300;
    assert_eq!(
        tape::decode_prefix_into(&body[..second_content], body.len(), &mut out),
        Ok(tape::PrefixDecode::Complete)
    );
    assert_eq!(out, whole);
    // A single large content: the few header bytes suffice.
    let single = encode(&Node::new("enc").attr("v", "2").bytes(vec![7; 65_536]));
    assert_eq!(
        tape::decode_prefix_into(&single[..16], single.len(), &mut out),
        Ok(tape::PrefixDecode::Complete)
    );
    let mut expected = Vec::new();
    tape::decode_into(&single, &mut expected, true).unwrap();
    assert_eq!(out, expected);
    // A compressed body always needs all of it; a body cut short is an error, not a request.
    let mut compressed = vec![0x02];
    compressed.extend(miniz_oxide::deflate::compress_to_vec_zlib(&single[1..], 6));
    assert_eq!(
        tape::decode_prefix_into(&compressed[..4], compressed.len(), &mut out),
        Ok(tape::PrefixDecode::NeedWhole)
    );
    assert_eq!(
        tape::decode_prefix_into(&single[..16], 20, &mut out),
        Err(DecodeError::UnexpectedEnd)
    );
}
