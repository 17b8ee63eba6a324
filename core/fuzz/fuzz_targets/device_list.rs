//! Device lists on arbitrary bytes: a stored `DeviceListRecord`, an `ADVSignedKeyIndexList`
//! checked with a fixed key, and the resolution of a usync answer's devices (listed key indexes
//! and signed list drawn from the input) never panic; the devices a resolution keeps are
//! always device 0 as listed, companions the answer lists, or companions of the stored list.
#![no_main]

use libfuzzer_sys::fuzz_target;
use walink_core::client::messaging::DeviceAddress;
use walink_core::client::messaging::device_list::{DeviceList, resolve, verify_key_index_list};
use walink_core::client::messaging::usync::{SignedKeyIndexList, UserDevices};

fuzz_target!(|data: &[u8]| {
    let key = [9u8; 32];
    let (head, tail) = data.split_at(data.len().min(24));
    let stored = DeviceList::decode(tail).ok();
    let _ = verify_key_index_list(tail, &key);
    let key_indexes: Vec<(u16, u32)> = head
        .chunks_exact(3)
        .map(|c| (u16::from(c[0] % 8), u32::from(c[1]) << 8 | u32::from(c[2])))
        .collect();
    let mut devices = vec![0];
    devices.extend(key_indexes.iter().map(|(d, _)| *d).filter(|&d| d != 0));
    let reply = UserDevices {
        user: DeviceAddress::parse("1@s.whatsapp.net").unwrap(),
        lid: None,
        devices,
        key_indexes: key_indexes.clone(),
        key_index_list: Some(SignedKeyIndexList {
            timestamp: u64::from(head.first().copied().unwrap_or(0)),
            bytes: tail.to_vec(),
        }),
    };
    let resolved = resolve(&reply, Some(&key), stored.as_ref());
    for device in &resolved.devices {
        let listed = reply.devices.contains(device);
        let remembered = stored
            .as_ref()
            .is_some_and(|s| s.devices.iter().any(|(d, _)| d == device));
        assert!(listed || remembered, "device {device} came from nowhere");
    }
    if let Some(update) = resolved.store {
        let again = DeviceList::decode(&update.encode()).unwrap();
        assert_eq!(again, update);
    }
});
