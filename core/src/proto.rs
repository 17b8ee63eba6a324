//! Protobuf messages generated at build time from the schema in `core/proto/`.
//!
//! The schema is walink's own: it declares only the messages and fields walink speaks, with the
//! field numbers WhatsApp uses.
#![allow(missing_docs, clippy::all)]

/// Messages on the wire, as WhatsApp defines them.
pub mod wa {
    #[allow(unused_imports)]
    use super::NoFieldPath as _;
    include!(concat!(env!("OUT_DIR"), "/wa.rs"));
}

/// walink's own versioned storage encodings (sessions, sender keys).
pub mod walink {
    #[allow(unused_imports)]
    use super::NoFieldPath as _;
    include!(concat!(env!("OUT_DIR"), "/walink.rs"));
}

/// Keeps the generated decoders from recording where in the message a decode failed.
///
/// prost's derived `merge_field` calls `error.push(STRUCT_NAME, "field")` on every field's error
/// path, which puts each message's and field's name in the module as a string and a call per
/// field (-22 KB raw, -6 KB gzip of the wasm module; docs/decisions.md, "wasm size with content,
/// media and history (issue 16)"). Method lookup tries `&self` receivers before `&mut self` ones,
/// so inside `wa` and `walink`, where this trait is in scope, that call lands here and does
/// nothing. The error itself (its description: truncated buffer, invalid varint, wrong wire type,
/// nesting too deep) is unchanged; only the field path that `Display` would append is gone, and
/// walink's errors never show it.
pub(crate) trait NoFieldPath {
    /// Does nothing (see the trait).
    fn push(&self, _message: &'static str, _field: &'static str) {}
}

impl NoFieldPath for prost::DecodeError {}

/// prost as the generated code sees it (`prost_path` in `core/build.rs`): prost itself, except
/// that every nested message is decoded by one shared length-delimited loop instead of one
/// instance of prost's loop per message type (-30 KB raw, -7 KB gzip of the wasm module,
/// docs/decisions.md). prost's own recursion counter is private to it, so the nesting bound is
/// kept here, per thread, at the same depth ([`crate::limits::PROTO_MAX_NESTING`]).
pub mod prost_shim {
    pub use prost::*;

    /// prost's encoding functions, with [`encoding::message::merge`] shared.
    pub mod encoding {
        pub use prost::encoding::*;

        /// Nested messages.
        pub mod message {
            use prost::DecodeError;
            use prost::bytes::Buf;
            pub use prost::encoding::message::*;
            use prost::encoding::wire_type::check_wire_type;
            use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint};

            /// Merges one length-delimited nested message into `msg`.
            pub fn merge<M: prost::Message, B: Buf>(
                wire_type: WireType,
                msg: &mut M,
                buf: &mut B,
                ctx: DecodeContext,
            ) -> Result<(), DecodeError> {
                check_wire_type(WireType::LengthDelimited, wire_type)?;
                let _nested = Nested::enter()?;
                merge_fields(buf, ctx, &mut |tag, wire_type, buf, ctx| {
                    msg.merge_field(tag, wire_type, buf, ctx)
                })
            }

            std::thread_local! {
                /// Nested messages being decoded on this thread.
                static DEPTH: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
            }

            /// One level of nesting, left when dropped (also on an error).
            struct Nested;

            impl Nested {
                #[allow(deprecated)]
                fn enter() -> Result<Nested, DecodeError> {
                    DEPTH.with(|depth| {
                        if depth.get() >= crate::limits::PROTO_MAX_NESTING {
                            return Err(DecodeError::new("recursion limit reached"));
                        }
                        depth.set(depth.get() + 1);
                        Ok(Nested)
                    })
                }
            }

            impl Drop for Nested {
                fn drop(&mut self) {
                    DEPTH.with(|depth| depth.set(depth.get().saturating_sub(1)));
                }
            }

            /// Decodes one more element of a repeated nested message.
            pub fn merge_repeated<M: prost::Message + Default>(
                wire_type: WireType,
                messages: &mut Vec<M>,
                buf: &mut impl Buf,
                ctx: DecodeContext,
            ) -> Result<(), DecodeError> {
                let mut msg = M::default();
                merge(wire_type, &mut msg, buf, ctx)?;
                messages.push(msg);
                Ok(())
            }

            #[inline(never)]
            #[allow(deprecated)]
            fn merge_fields<B: Buf>(
                buf: &mut B,
                ctx: DecodeContext,
                field: &mut dyn FnMut(
                    u32,
                    WireType,
                    &mut B,
                    DecodeContext,
                ) -> Result<(), DecodeError>,
            ) -> Result<(), DecodeError> {
                let len = decode_varint(buf)?;
                let remaining = buf.remaining();
                if len > remaining as u64 {
                    return Err(DecodeError::new("buffer underflow"));
                }
                let limit = remaining - len as usize;
                while buf.remaining() > limit {
                    let (tag, wire_type) = decode_key(buf)?;
                    field(tag, wire_type, buf, ctx.clone())?;
                }
                if buf.remaining() != limit {
                    return Err(DecodeError::new("delimited length exceeded"));
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::wa;
    use prost::Message as _;

    /// A length-delimited field.
    fn field(tag: u32, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        prost::encoding::encode_key(tag, prost::encoding::WireType::LengthDelimited, &mut out);
        prost::encoding::encode_varint(value.len() as u64, &mut out);
        out.extend_from_slice(value);
        out
    }

    /// A quoted message nested `depth` times: `Message.extendedTextMessage(6).contextInfo(17)
    /// .quotedMessage(3)` repeated, three nested messages a level.
    fn nested(depth: usize) -> Vec<u8> {
        let mut bytes = Vec::new();
        for _ in 0..depth {
            bytes = field(6, &field(17, &field(3, &bytes)));
        }
        bytes
    }

    #[test]
    fn nesting_is_bounded_and_the_bound_is_released() {
        // Three nested messages per level.
        let levels = crate::limits::PROTO_MAX_NESTING / 3;
        assert!(wa::Message::decode(nested(levels).as_slice()).is_ok());
        assert!(wa::Message::decode(nested(levels + 1).as_slice()).is_err());
        // The failed decode left no depth behind.
        assert!(wa::Message::decode(nested(levels).as_slice()).is_ok());
    }

    #[test]
    fn nesting_far_past_the_bound_is_an_error_not_a_stack_overflow() {
        // 5,000 levels: 15,000 nested messages, 150 times the bound.
        let error = wa::Message::decode(nested(5_000).as_slice()).expect_err("too deep");
        assert!(
            error.to_string().contains("recursion limit reached"),
            "{error}"
        );
        // Nested messages in repeated fields count as well: a `HistorySync` whose conversation's
        // message holds the deep `Message`.
        let web_message = [field(1, &[]), field(2, &nested(5_000))].concat();
        let history = field(2, &field(2, &field(1, &web_message)));
        let error = wa::HistorySync::decode(history.as_slice()).expect_err("too deep");
        assert!(
            error.to_string().contains("recursion limit reached"),
            "{error}"
        );
    }

    #[test]
    fn decode_errors_carry_no_field_path() {
        // A truncated contextInfo inside an extendedTextMessage: prost would name
        // `Message.extended_text_message` and `ExtendedTextMessage.context_info`.
        let error = wa::Message::decode([0x32, 3, 0x8a, 0x01, 10].as_slice()).expect_err("short");
        let text = error.to_string();
        assert!(!text.contains("Message."), "{text}");
        assert!(text.contains("buffer underflow"), "{text}");
    }

    #[test]
    fn a_nested_message_longer_than_its_parent_is_refused() {
        // An extendedTextMessage of 4 bytes whose contextInfo claims 10.
        let mut bytes = field(6, &[0x8a, 0x01, 10, 0]);
        assert!(wa::Message::decode(bytes.as_slice()).is_err());
        // The contextInfo runs past the end of the input.
        bytes = vec![0x32, 3, 0x8a, 0x01, 10];
        assert!(wa::Message::decode(bytes.as_slice()).is_err());
        assert!(wa::Message::decode(field(6, &field(17, &[])).as_slice()).is_ok());
    }
}
