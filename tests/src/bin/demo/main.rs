//! `./build.sh demo`: walink end to end, offline, against the simulated WhatsApp server.
//!
//! Part 1 decodes real stanzas, prints them as XML-like text and encodes them again (the bytes
//! must come back identical). Part 2 ([`live`]) starts the `mock-server` binary, creates an
//! account, runs a walink client over a real websocket, lets the simulated phone scan its QR,
//! goes through the 515 restart and the login, restarts the host from its file store, exchanges
//! texts with another account's phone, is unlinked, links again by pairing code, and prints a
//! transcript of every step. The demo exits non-zero if any step fails.

#![warn(unreachable_pub)]
#![forbid(unsafe_code)]

mod live;

use std::fmt::Write as _;
use std::process::ExitCode;

use walink_core::binary::{Content, Node, decode, encode};

/// A stanza to show: where its bytes come from, and the bytes.
struct Stanza {
    title: &'static str,
    source: &'static str,
    hex: &'static str,
}

const STANZAS: [Stanza; 3] = [
    Stanza {
        title: "the keepalive ping",
        source: "protocol/transport.md appendix A.1",
        hex: "00 F8 09 19 08 FF 83 1B 2A 3F 16 57 04 29 11 FA 00 03",
    },
    Stanza {
        title: "leave passive mode after login (id and to left out)",
        source: "protocol/transport.md appendix A.1",
        hex: "00 F8 06 19 16 EC 18 04 5A F8 01 F8 01 EC 01",
    },
    Stanza {
        title: "an iq with a device JID, byte content and a hex-packed attribute",
        source: "Baileys 7.0.0-rc14 encodeBinaryNode, tools/TOOLCHAIN.md",
        hex: "00f80a1908ff861234b5678a1f11fa000304291657f803f80156f8040e0cf70003ff86155512345\
              67ffc04010203faf80438fc03686578fb04deadbeeffc0b68656c6c6f20776f726c64",
    },
];

fn main() -> ExitCode {
    println!(
        "walink {}: demo against walink-sim's mock server\n",
        env!("CARGO_PKG_VERSION")
    );
    let codec_ok = codec_part();
    let live = live::run();
    match (&live, codec_ok) {
        (Ok(()), true) => {
            println!("\ndemo: every step passed");
            ExitCode::SUCCESS
        }
        (Ok(()), false) => {
            println!("\ndemo FAILED: the codec part did not round-trip");
            ExitCode::FAILURE
        }
        (Err(error), _) => {
            println!("\ndemo FAILED: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Part 1: decodes and re-encodes real stanzas; true when every one round-trips.
fn codec_part() -> bool {
    println!("== part 1: the binary node codec on real stanzas\n");
    let mut all_identical = true;
    for (number, stanza) in STANZAS.iter().enumerate() {
        let Some(bytes) = unhex(stanza.hex) else {
            println!("[{}] bad hex in the demo itself", number + 1);
            return false;
        };
        println!("[{}] {} ({})", number + 1, stanza.title, stanza.source);
        println!("    {} bytes: {}", bytes.len(), spaced_hex(&bytes));
        match decode(&bytes) {
            Ok(node) => {
                print!("{}", pretty(&node, 2));
                let again = encode(&node);
                let identical = again == bytes;
                all_identical &= identical;
                println!(
                    "    re-encoded: {} bytes, {}\n",
                    again.len(),
                    if identical { "identical" } else { "DIFFERENT" }
                );
            }
            Err(error) => {
                all_identical = false;
                println!("    decode failed: {error}\n");
            }
        }
    }
    if all_identical {
        println!("every stanza decoded and re-encoded byte for byte\n");
    } else {
        println!("some stanzas did not round-trip\n");
    }
    all_identical
}

/// The node as indented XML-like text; byte content is shown as text when it is printable UTF-8
/// and as hex otherwise.
fn pretty(node: &Node, indent: usize) -> String {
    let pad = " ".repeat(indent * 2);
    let mut out = format!("{pad}<{}", node.tag);
    for attr in &node.attrs {
        let _ = write!(out, " {}=\"{}\"", attr.key, escape(&attr.value.to_string()));
    }
    match &node.content {
        Content::None => out.push_str("/>\n"),
        Content::Nodes(children) if children.is_empty() => out.push_str("></>\n"),
        Content::Nodes(children) => {
            out.push_str(">\n");
            for child in children {
                out.push_str(&pretty(child, indent + 1));
            }
            let _ = writeln!(out, "{pad}</{}>", node.tag);
        }
        Content::Bytes(bytes) => {
            let shown = match std::str::from_utf8(bytes) {
                Ok(text) if text.chars().all(|c| !c.is_control()) => escape(text),
                _ => format!("<!-- {} bytes: {} -->", bytes.len(), spaced_hex(bytes)),
            };
            let _ = writeln!(out, ">{shown}</{}>", node.tag);
        }
        Content::Str(text) => {
            let _ = writeln!(out, ">{}</{}>", escape(text), node.tag);
        }
        Content::Jid(jid) => {
            let _ = writeln!(out, ">{jid}</{}>", node.tag);
        }
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn spaced_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (index, byte) in bytes.iter().enumerate() {
        if index > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// Hex digits (spaces and line breaks ignored) to bytes; `None` for a non-digit or an odd count.
fn unhex(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u32> = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_digit(16))
        .collect::<Option<_>>()?;
    digits
        .chunks(2)
        .map(|pair| match pair {
            [high, low] => u8::try_from(high * 16 + low).ok(),
            _ => None,
        })
        .collect()
}
