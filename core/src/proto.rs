//! Protobuf messages generated at build time from the schema in `core/proto/`.
//!
//! The schema is walink's own: it declares only the messages and fields walink speaks, with the
//! field numbers WhatsApp uses.
#![allow(missing_docs, clippy::all)]

/// Messages on the wire, as WhatsApp defines them.
pub mod wa {
    include!(concat!(env!("OUT_DIR"), "/wa.rs"));
}

/// walink's own versioned storage encodings (sessions, sender keys).
pub mod walink {
    include!(concat!(env!("OUT_DIR"), "/walink.rs"));
}
