//! walink's ClientPayload builders, decoded by Baileys' own schema (protobufjs, WAProto.proto):
//! proves the field numbers and enum values, independently of walink's .proto files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use prost::Message;
use serde_json::json;
use walink_core::noise::NoiseKeyPair;
use walink_core::noise::payload::{
    ClientProfile, RegistrationKeys, WebVersion, login_payload, registration_payload,
};
use walink_core::signal::xeddsa;
use walink_sim::oracle::Oracle;

fn profile() -> ClientProfile {
    let mut profile = ClientProfile::new(WebVersion::new(2, 3000, 1_045_649_367), "walink");
    profile.push_name = Some("Ada".to_owned());
    profile
}

#[test]
fn login_payload_decodes_in_baileys_schema() {
    let mut baileys = Oracle::spawn("noise.mjs").unwrap();
    let payload = login_payload(&profile(), 15_551_234_567, 7).encode_to_vec();
    let decoded = baileys
        .call(
            "decode_client_payload",
            json!({ "payload": hex::encode(&payload) }),
        )
        .unwrap();
    assert_eq!(
        decoded,
        json!({
            "username": "15551234567",
            "passive": false,
            "userAgent": {
                "platform": "WEB",
                "appVersion": { "primary": 2, "secondary": 3000, "tertiary": 1_045_649_367 },
                "mcc": "000",
                "mnc": "000",
                "osVersion": "0.1",
                "device": "Desktop",
                "osBuildNumber": "0.1",
                "releaseChannel": "RELEASE",
                "localeLanguageIso6391": "en",
                "localeCountryIso31661Alpha2": "US",
            },
            "webInfo": { "webSubPlatform": "WEB_BROWSER" },
            "pushName": "Ada",
            "connectType": "WIFI_UNKNOWN",
            "connectReason": "USER_ACTIVATED",
            "device": 7,
            "pull": true,
            "lidDbMigrated": false,
        })
    );
}

#[test]
fn registration_payload_decodes_in_baileys_schema() {
    let mut baileys = Oracle::spawn("noise.mjs").unwrap();
    let identity = NoiseKeyPair::from_private([0x61; 32]);
    let prekey = NoiseKeyPair::from_private([0x62; 32]).public_key();
    let mut signed = vec![5];
    signed.extend_from_slice(&prekey);
    let keys = RegistrationKeys {
        registration_id: 12_345,
        identity_public: identity.public_key(),
        signed_prekey_id: 1,
        signed_prekey_public: prekey,
        signed_prekey_signature: xeddsa::sign(&identity.private_key(), &signed, &[9; 64]),
    };
    let payload = registration_payload(&profile(), &keys)
        .unwrap()
        .encode_to_vec();
    let decoded = baileys
        .call(
            "decode_client_payload",
            json!({ "payload": hex::encode(&payload) }),
        )
        .unwrap();
    assert_eq!(decoded["passive"], json!(false));
    assert_eq!(decoded["pull"], json!(false));
    assert_eq!(decoded.get("username"), None);
    let data = &decoded["devicePairingData"];
    assert_eq!(data["eRegid"], json!([0, 0, 0x30, 0x39]));
    assert_eq!(data["eKeytype"], json!([5]));
    assert_eq!(data["eIdent"], json!(identity.public_key().to_vec()));
    assert_eq!(data["eSkeyId"], json!([0, 0, 1]));
    assert_eq!(data["eSkeyVal"], json!(prekey.to_vec()));
    // MD5("2.3000.1045649367")
    assert_eq!(
        data["buildHash"],
        json!(hex::decode("9fa53af9421567b114e33c9bb1ef7db2").unwrap())
    );
    assert_eq!(
        data["deviceProps"],
        json!({
            "os": "walink",
            "version": { "primary": 0, "secondary": 1, "tertiary": 0 },
            "platformType": "CHROME",
            "requireFullSync": false,
            "historySyncConfig": {
                "storageQuotaMb": 10240,
                "inlineInitialPayloadInE2EeMsg": true,
                "supportCallLogHistory": false,
                "supportBotUserAgentChatHistory": true,
                "supportCagReactionsAndPolls": true,
                "supportBizHostedMsg": true,
                "supportRecentSyncChunkMessageCountTuning": true,
                "supportHostedGroupMsg": true,
                "supportFbidBotChatHistory": true,
                "supportMessageAssociation": true,
                "supportGroupHistory": false,
            },
        })
    );
    // libsignal-node accepts the signed prekey signature over 0x05 || key.
    let signature: Vec<u8> = serde_json::from_value(data["eSkeySig"].clone()).unwrap();
    let valid = baileys
        .call(
            "verify_signature",
            json!({
                "public": hex::encode(identity.public_key()),
                "message": hex::encode(&signed),
                "signature": hex::encode(signature),
            }),
        )
        .unwrap();
    assert_eq!(valid, json!(true));
}
