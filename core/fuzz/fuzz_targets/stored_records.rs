//! The stored-record decoders on arbitrary bytes: Signal session and sender-key records, the
//! device, prekey and identity records, the app-state collection, key and view records. Never a
//! panic, never more memory than the record's decode budget, and a record that decodes
//! re-encodes to a record that decodes to the same thing.
#![no_main]

#[path = "common/counting.rs"]
mod counting;

use libfuzzer_sys::fuzz_target;
use walink_core::appstate::persist;
use walink_core::limits::decode_budget;
use walink_core::signal::{SenderKeyRecord, SessionRecord};
use walink_core::store::{self, Record, Space};

fuzz_target!(|data: &[u8]| {
    let budget = decode_budget(data.len());
    let (_, peak) = counting::peak_of(|| {
        if let Ok(record) = SessionRecord::deserialize(data) {
            let again = SessionRecord::deserialize(&record.serialize()).expect("re-encoded");
            assert_eq!(again.serialize(), record.serialize());
        }
        if let Ok(record) = SenderKeyRecord::deserialize(data) {
            let again = SenderKeyRecord::deserialize(&record.serialize()).expect("re-encoded");
            assert_eq!(again.serialize(), record.serialize());
        }
        for space in [Space::Device, Space::PreKey, Space::SignedPreKey, Space::Identity] {
            let record = Record {
                space,
                key: match space {
                    Space::Identity => "15551234567.0@s.whatsapp.net".to_owned(),
                    Space::Device => "device".to_owned(),
                    _ => "7".to_owned(),
                },
                value: data.to_vec(),
            };
            match space {
                Space::Device => {
                    if let Ok(device) = store::decode_device(&record) {
                        let again = store::decode_device(&store::encode_device(&device));
                        assert!(again.is_ok(), "a decoded device does not re-encode");
                    }
                }
                Space::Identity => {
                    let _ = store::decode_identity(&record);
                }
                _ => {
                    if let Ok(key) = store::decode_pre_key(&record) {
                        assert!(store::decode_pre_key(&store::encode_pre_key(&key)).is_ok());
                    }
                }
            }
        }
        if let Ok((collection, state)) = persist::decode_collection(data) {
            let again = persist::decode_collection(&persist::encode_collection(collection, &state));
            assert_eq!(again, Ok((collection, state)));
        }
        if let Ok(key) = persist::decode_key(data) {
            assert!(persist::decode_key(&persist::encode_key(&key)).is_ok());
        }
        if let Ok(view) = persist::decode_view(data) {
            assert_eq!(persist::decode_view(&persist::encode_view(&view)), Ok(view));
        }
    });
    assert!(peak <= budget, "decoding {} bytes held {peak}", data.len());
});
