//! The users' last verified device lists.

use crate::store::Space;

use super::super::address::DeviceAddress;
use super::super::device_list::DeviceList;
use super::{Keystore, RecordChange};

impl Keystore {
    /// The last verified device list of `user` (any device of the user names it).
    pub fn device_list(&self, user: &DeviceAddress) -> Option<&DeviceList> {
        let address = self.lids.canonical(&user.with_device(0));
        let at = self.device_list_at(&address).ok()?;
        self.device_lists.get(at).map(|(_, list)| list)
    }

    /// Stores a newly verified device list of `user`.
    pub fn put_device_list(&mut self, user: &DeviceAddress, list: DeviceList) {
        let address = self.lids.canonical(&user.with_device(0));
        self.push_change(RecordChange {
            space: Space::DeviceList,
            key: address.record_key(),
            value: Some(list.encode()),
        });
        self.set_device_list(address, list);
    }

    pub(super) fn device_list_at(&self, address: &DeviceAddress) -> Result<usize, usize> {
        self.device_lists
            .binary_search_by(|(stored, _)| stored.cmp(address))
    }

    pub(super) fn set_device_list(&mut self, address: DeviceAddress, list: DeviceList) {
        match self.device_list_at(&address) {
            Ok(at) => {
                if let Some(entry) = self.device_lists.get_mut(at) {
                    entry.1 = list;
                }
            }
            Err(at) => self.device_lists.insert(at, (address, list)),
        }
    }

    pub(super) fn take_device_list(&mut self, address: &DeviceAddress) -> Option<DeviceList> {
        let at = self.device_list_at(address).ok()?;
        Some(self.device_lists.remove(at).1)
    }
}
