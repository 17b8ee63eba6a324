//! walink's protobuf schema against WhatsApp's, as Baileys ships it (tests/oracle/proto.mjs).
//!
//! - every field and enum value walink declares has WhatsApp's number, type and label;
//! - for every message type, a fully populated sample encoded by Baileys (protobufjs) decodes in
//!   walink and re-encodes to the identical bytes, and Baileys reads walink's bytes back to the
//!   same object;
//! - messages built in Rust decode in Baileys to the expected objects.

use prost::Message as _;
use serde_json::{Value, json};
use walink_core::proto::wa;
use walink_sim::oracle::Oracle;

/// Fields walink declares from schemas newer than Baileys rc14's.
const NEWER_THAN_BAILEYS: &[&str] = &[
    "ClientPairingProps.isHsThumbnailSyncEnabled",
    "ClientPairingProps.subscriptionSyncPayload",
];

type Oops = Box<dyn std::error::Error>;

fn reencode<M: prost::Message + Default>(bytes: &[u8]) -> Result<Vec<u8>, prost::DecodeError> {
    Ok(M::decode(bytes)?.encode_to_vec())
}

/// Decodes `bytes` as the walink type named `path` (its path in package `wa`) and encodes it again.
fn reencode_as(path: &str, bytes: &[u8]) -> Result<Vec<u8>, Oops> {
    use wa::message as m;
    use wa::sync_action_value as s;
    macro_rules! table {
        ($($name:literal => $ty:ty,)*) => {
            match path {
                $($name => Ok(reencode::<$ty>(bytes)?),)*
                other => Err(format!("walink has no type {other}").into()),
            }
        };
    }
    table! {
        "ADVSignedDeviceIdentityHMAC" => wa::AdvSignedDeviceIdentityHmac,
        "ADVSignedDeviceIdentity" => wa::AdvSignedDeviceIdentity,
        "ADVDeviceIdentity" => wa::AdvDeviceIdentity,
        "ADVKeyIndexList" => wa::AdvKeyIndexList,
        "ADVSignedKeyIndexList" => wa::AdvSignedKeyIndexList,
        "ClientPairingProps" => wa::ClientPairingProps,
        "MessageKey" => wa::MessageKey,
        "ContextInfo" => wa::ContextInfo,
        "DeviceListMetadata" => wa::DeviceListMetadata,
        "MessageContextInfo" => wa::MessageContextInfo,
        "Message" => wa::Message,
        "Message.SenderKeyDistributionMessage" => m::SenderKeyDistributionMessage,
        "Message.FutureProofMessage" => m::FutureProofMessage,
        "Message.ImageMessage" => m::ImageMessage,
        "Message.ContactMessage" => m::ContactMessage,
        "Message.LocationMessage" => m::LocationMessage,
        "Message.ExtendedTextMessage" => m::ExtendedTextMessage,
        "Message.DocumentMessage" => m::DocumentMessage,
        "Message.AudioMessage" => m::AudioMessage,
        "Message.VideoMessage" => m::VideoMessage,
        "Message.StickerMessage" => m::StickerMessage,
        "Message.ReactionMessage" => m::ReactionMessage,
        "GroupMention" => wa::GroupMention,
        "Message.ContactsArrayMessage" => m::ContactsArrayMessage,
        "Message.LiveLocationMessage" => m::LiveLocationMessage,
        "Message.GroupInviteMessage" => m::GroupInviteMessage,
        "Message.EncReactionMessage" => m::EncReactionMessage,
        "Message.PollCreationMessage" => m::PollCreationMessage,
        "Message.PollCreationMessage.Option" => m::poll_creation_message::Option,
        "Message.PollUpdateMessage" => m::PollUpdateMessage,
        "Message.PollEncValue" => m::PollEncValue,
        "Message.PollUpdateMessageMetadata" => m::PollUpdateMessageMetadata,
        "Message.PollVoteMessage" => m::PollVoteMessage,
        "Message.SecretEncryptedMessage" => m::SecretEncryptedMessage,
        "Message.KeepInChatMessage" => m::KeepInChatMessage,
        "Message.PinInChatMessage" => m::PinInChatMessage,
        "Message.DeviceSentMessage" => m::DeviceSentMessage,
        "Message.ProtocolMessage" => m::ProtocolMessage,
        "Message.PeerDataOperationRequestMessage" => m::PeerDataOperationRequestMessage,
        "Message.PeerDataOperationRequestMessage.HistorySyncOnDemandRequest" => m::peer_data_operation_request_message::HistorySyncOnDemandRequest,
        "Message.PeerDataOperationRequestMessage.PlaceholderMessageResendRequest" => m::peer_data_operation_request_message::PlaceholderMessageResendRequest,
        "Message.PeerDataOperationRequestResponseMessage" => m::PeerDataOperationRequestResponseMessage,
        "Message.PeerDataOperationRequestResponseMessage.PeerDataOperationResult" => m::peer_data_operation_request_response_message::PeerDataOperationResult,
        "Message.PeerDataOperationRequestResponseMessage.PeerDataOperationResult.PlaceholderMessageResendResponse" => m::peer_data_operation_request_response_message::peer_data_operation_result::PlaceholderMessageResendResponse,
        "Message.InitialSecurityNotificationSettingSync" => m::InitialSecurityNotificationSettingSync,
        "Message.AppStateFatalExceptionNotification" => m::AppStateFatalExceptionNotification,
        "Message.HistorySyncNotification" => m::HistorySyncNotification,
        "Message.AppStateSyncKeyShare" => m::AppStateSyncKeyShare,
        "Message.AppStateSyncKeyRequest" => m::AppStateSyncKeyRequest,
        "Message.AppStateSyncKey" => m::AppStateSyncKey,
        "Message.AppStateSyncKeyId" => m::AppStateSyncKeyId,
        "Message.AppStateSyncKeyData" => m::AppStateSyncKeyData,
        "Message.AppStateSyncKeyFingerprint" => m::AppStateSyncKeyFingerprint,
        "HistorySync" => wa::HistorySync,
        "Pushname" => wa::Pushname,
        "PhoneNumberToLIDMapping" => wa::PhoneNumberToLidMapping,
        "GroupParticipant" => wa::GroupParticipant,
        "Conversation" => wa::Conversation,
        "HistorySyncMsg" => wa::HistorySyncMsg,
        "UserReceipt" => wa::UserReceipt,
        "Reaction" => wa::Reaction,
        "WebMessageInfo" => wa::WebMessageInfo,
        "SyncdVersion" => wa::SyncdVersion,
        "KeyId" => wa::KeyId,
        "SyncdIndex" => wa::SyncdIndex,
        "SyncdValue" => wa::SyncdValue,
        "SyncdRecord" => wa::SyncdRecord,
        "SyncdMutation" => wa::SyncdMutation,
        "SyncdMutations" => wa::SyncdMutations,
        "ExternalBlobReference" => wa::ExternalBlobReference,
        "ExitCode" => wa::ExitCode,
        "SyncdPatch" => wa::SyncdPatch,
        "SyncdSnapshot" => wa::SyncdSnapshot,
        "SyncActionData" => wa::SyncActionData,
        "SyncActionValue" => wa::SyncActionValue,
        "SyncActionValue.SyncActionMessage" => s::SyncActionMessage,
        "SyncActionValue.SyncActionMessageRange" => s::SyncActionMessageRange,
        "SyncActionValue.StarAction" => s::StarAction,
        "SyncActionValue.ContactAction" => s::ContactAction,
        "SyncActionValue.MuteAction" => s::MuteAction,
        "SyncActionValue.PinAction" => s::PinAction,
        "SyncActionValue.PushNameSetting" => s::PushNameSetting,
        "SyncActionValue.QuickReplyAction" => s::QuickReplyAction,
        "SyncActionValue.LabelEditAction" => s::LabelEditAction,
        "SyncActionValue.LabelAssociationAction" => s::LabelAssociationAction,
        "SyncActionValue.LocaleSetting" => s::LocaleSetting,
        "SyncActionValue.ArchiveChatAction" => s::ArchiveChatAction,
        "SyncActionValue.DeleteMessageForMeAction" => s::DeleteMessageForMeAction,
        "SyncActionValue.KeyExpiration" => s::KeyExpiration,
        "SyncActionValue.MarkChatAsReadAction" => s::MarkChatAsReadAction,
        "SyncActionValue.ClearChatAction" => s::ClearChatAction,
        "SyncActionValue.DeleteChatAction" => s::DeleteChatAction,
        "SyncActionValue.UnarchiveChatsSetting" => s::UnarchiveChatsSetting,
        "SyncActionValue.PrimaryFeature" => s::PrimaryFeature,
        "SyncActionValue.AndroidUnsupportedActions" => s::AndroidUnsupportedActions,
        "SyncActionValue.TimeFormatAction" => s::TimeFormatAction,
        "SyncActionValue.PnForLidChatAction" => s::PnForLidChatAction,
        "SyncActionValue.PrivacySettingRelayAllCalls" => s::PrivacySettingRelayAllCalls,
        "SyncActionValue.StatusPrivacyAction" => s::StatusPrivacyAction,
        "SyncActionValue.LockChatAction" => s::LockChatAction,
        "SyncActionValue.PrivacySettingDisableLinkPreviewsAction" => s::PrivacySettingDisableLinkPreviewsAction,
        "SyncActionValue.NotificationActivitySettingAction" => s::NotificationActivitySettingAction,
        "SyncActionValue.LidContactAction" => s::LidContactAction,
        "SyncActionValue.PrivacySettingChannelsPersonalisedRecommendationAction" => s::PrivacySettingChannelsPersonalisedRecommendationAction,
    }
}

#[test]
fn every_declared_field_matches_whatsapps_schema() -> Result<(), Oops> {
    let mut oracle = Oracle::spawn("proto.mjs")?;
    let diff = oracle.call("schemaDiff", json!({ "newer": NEWER_THAN_BAILEYS }))?;
    assert_eq!(
        diff["problems"],
        json!([]),
        "schema differs from WhatsApp's"
    );
    assert!(
        diff["fields"].as_u64() > Some(300),
        "too few fields compared: {diff}"
    );
    Ok(())
}

#[test]
fn baileys_bytes_reencode_identically_and_read_back_the_same() -> Result<(), Oops> {
    let mut oracle = Oracle::spawn("proto.mjs")?;
    let mut compared = 0;
    for seed in 1..=8u32 {
        let samples = oracle.call("samples", json!({ "seed": seed }))?;
        for sample in samples.as_array().ok_or("samples is not a list")? {
            let path = sample["type"].as_str().ok_or("no type")?;
            let theirs = hex::decode(sample["hex"].as_str().ok_or("no hex")?)?;
            let ours = reencode_as(path, &theirs)?;
            assert_eq!(
                hex::encode(&ours),
                hex::encode(&theirs),
                "{path} (seed {seed}) re-encodes differently"
            );
            let read_back =
                oracle.call("decode", json!({ "type": path, "hex": hex::encode(&ours) }))?;
            assert_eq!(read_back, sample["object"], "{path} (seed {seed})");
            compared += 1;
        }
    }
    assert!(compared >= 8 * 80, "only {compared} samples compared");
    Ok(())
}

fn baileys_reads(
    oracle: &mut Oracle,
    path: &str,
    message: &impl prost::Message,
) -> Result<Value, Oops> {
    Ok(oracle.call(
        "decode",
        json!({ "type": path, "hex": hex::encode(message.encode_to_vec()) }),
    )?)
}

#[test]
fn messages_built_in_rust_read_as_expected_in_baileys() -> Result<(), Oops> {
    let mut oracle = Oracle::spawn("proto.mjs")?;

    let reply = wa::Message {
        extended_text_message: Some(Box::new(wa::message::ExtendedTextMessage {
            text: Some("see @15551234567".into()),
            context_info: Some(Box::new(wa::ContextInfo {
                stanza_id: Some("3EB0ABCD".into()),
                participant: Some("15551234567@s.whatsapp.net".into()),
                quoted_message: Some(Box::new(wa::Message {
                    conversation: Some("hi".into()),
                    ..Default::default()
                })),
                mentioned_jid: vec!["15551234567@s.whatsapp.net".into()],
                ..Default::default()
            })),
            ..Default::default()
        })),
        message_context_info: Some(wa::MessageContextInfo {
            device_list_metadata: Some(wa::DeviceListMetadata {
                sender_timestamp: Some(1_700_000_000),
                sender_key_indexes: vec![0, 3],
                ..Default::default()
            }),
            device_list_metadata_version: Some(2),
            message_secret: Some(vec![7; 32]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let secret = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
    assert_eq!(
        baileys_reads(&mut oracle, "Message", &reply)?,
        json!({
            "extendedTextMessage": {
                "text": "see @15551234567",
                "contextInfo": {
                    "stanzaId": "3EB0ABCD",
                    "participant": "15551234567@s.whatsapp.net",
                    "quotedMessage": { "conversation": "hi" },
                    "mentionedJid": ["15551234567@s.whatsapp.net"],
                },
            },
            "messageContextInfo": {
                "deviceListMetadata": { "senderTimestamp": "1700000000", "senderKeyIndexes": [0, 3] },
                "deviceListMetadataVersion": 2,
                "messageSecret": secret,
            },
        })
    );

    // proto2 presence: a field set to its default value is still written.
    let unmute = wa::SyncActionValue {
        timestamp: Some(-1),
        mute_action: Some(wa::sync_action_value::MuteAction {
            muted: Some(false),
            mute_end_timestamp: Some(0),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        baileys_reads(&mut oracle, "SyncActionValue", &unmute)?,
        json!({ "timestamp": "-1", "muteAction": { "muted": false, "muteEndTimestamp": "0" } })
    );

    let revoke = wa::Message {
        protocol_message: Some(Box::new(wa::message::ProtocolMessage {
            key: Some(wa::MessageKey {
                remote_jid: Some("120363000000000000@g.us".into()),
                from_me: Some(true),
                id: Some("3EB0FF".into()),
                participant: None,
            }),
            r#type: Some(wa::message::protocol_message::Type::Revoke as i32),
            ..Default::default()
        })),
        ..Default::default()
    };
    assert_eq!(
        baileys_reads(&mut oracle, "Message", &revoke)?,
        json!({ "protocolMessage": {
            "key": { "remoteJid": "120363000000000000@g.us", "fromMe": true, "id": "3EB0FF" },
            "type": 0,
        } })
    );
    Ok(())
}

#[test]
fn baileys_values_land_in_the_named_rust_fields() -> Result<(), Oops> {
    let mut oracle = Oracle::spawn("proto.mjs")?;
    let object = json!({
        "imageMessage": {
            "url": "https://mmg.whatsapp.net/x",
            "mimetype": "image/jpeg",
            "fileSha256": "AQID",
            "fileLength": "18446744073709551615",
            "mediaKey": "BAUG",
            "directPath": "/v/t62/x",
            "mediaKeyTimestamp": "-5",
        },
    });
    let bytes = hex::decode(
        oracle
            .call("encode", json!({ "type": "Message", "object": object }))?
            .as_str()
            .ok_or("no hex")?,
    )?;
    let message = wa::Message::decode(bytes.as_slice())?;
    let image = message.image_message.ok_or("no image")?;
    assert_eq!(image.url(), "https://mmg.whatsapp.net/x");
    assert_eq!(image.mimetype(), "image/jpeg");
    assert_eq!(image.file_sha256(), [1, 2, 3]);
    assert_eq!(image.file_length(), u64::MAX);
    assert_eq!(image.media_key(), [4, 5, 6]);
    assert_eq!(image.direct_path(), "/v/t62/x");
    assert_eq!(image.media_key_timestamp(), -5);
    Ok(())
}
