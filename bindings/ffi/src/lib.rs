//! walink-ffi: the uniffi facade of walink-core for Kotlin, Swift and Python.
//!
//! This crate adds no protocol logic. It converts types at the edge and lets uniffi generate the
//! foreign code (proc-macro style, library mode): `./build.sh bindings` builds the release cdylib
//! and runs `uniffi-bindgen generate <cdylib> --language kotlin|swift|python` on it.

#![warn(unreachable_pub)]
#![forbid(unsafe_code)]

mod appstate;
mod client;
mod codec;
mod content;
mod error;
mod groups;
mod media;
mod social;
mod store;

pub use appstate::{
    AppStateFailure, ChatSettings, Collection, Contact, Label, MessageRange, MessageRef, MuteUntil,
    SettingChange, SyncAction,
};
pub use client::{
    Client, ClientConfig, ClientEvent, ClientState, CloseReason, Command, CommandError,
    CommandOutput, CommandResult, Endpoints, FetchError, FetchRequest, FetchResult, Header, Output,
    StateReason, StoreChange, StoreKey, StoreRecord, default_config, endpoints, start_spaces,
};
pub use codec::{Attr, Content, Node, decode_node, encode_node};
pub use content::*;
pub use error::WalinkError;
pub use groups::{
    GroupChange, GroupCommand, GroupInfo, GroupOutput, GroupParticipant, GroupSetting,
    MembershipChange, ParticipantAction, ParticipantResult, ParticipantRole, ParticipantStatus,
};
pub use media::{
    DecryptInto, DecryptedEnd, EncryptedEnd, HostBody, HostUpload, MediaCryptoError,
    MediaDecryptor, MediaEncryptor, MediaFailure, MediaHashes, StreamedBody, media_type_of,
    new_media_key,
};
pub use social::{
    About, BusinessProfile, CallAction, CallInfo, ChatState, NumberInfo, ProfilePicture,
};
pub use store::NativeFileStore;

uniffi::setup_scaffolding!();

/// The version of walink that this library was built from (the workspace version).
#[uniffi::export]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_the_crate_version() {
        assert_eq!(version(), env!("CARGO_PKG_VERSION"));
    }
}
