//! Who is connected as which device, for tests of several processes sharing devices (gateway
//! workers): `GET /device-connections` answers, per device, its live connections, how many
//! logins it had, and every connection that was `replaced` by a newer login of the same device
//! (with the connection that replaced it and when). A device never had two live connections at
//! once exactly when it has no `replaced` entry: the server replaces the old connection at the
//! moment the second login arrives.
//!
//! Fed with the simulation's [`ServerEvent`]s; bounded by the number of devices (each keeps at
//! most [`MAX_REPLACED_KEPT`] replacements, and counts the rest).

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use crate::sim::ServerEvent;

/// The most replacements kept per device (the count goes on).
pub const MAX_REPLACED_KEPT: usize = 64;

#[derive(Default)]
struct DeviceRecord {
    live: Vec<u64>,
    logins: u64,
    replaced: Vec<Value>,
    replaced_total: u64,
}

/// The per-device connection record behind `GET /device-connections`.
#[derive(Default)]
pub struct DeviceConnections {
    devices: BTreeMap<String, DeviceRecord>,
    device_of: HashMap<u64, String>,
}

impl DeviceConnections {
    /// Takes one server event into account at `now` (Unix milliseconds).
    pub fn observe(&mut self, now: u64, event: &ServerEvent) {
        match event {
            ServerEvent::LoggedIn {
                conn, user, device, ..
            } => {
                let key = format!("{user}:{device}");
                let record = self.devices.entry(key.clone()).or_default();
                record.logins += 1;
                record.live.push(conn.0);
                self.device_of.insert(conn.0, key);
            }
            ServerEvent::Replaced {
                old,
                by,
                user,
                device,
            } => {
                let record = self.devices.entry(format!("{user}:{device}")).or_default();
                record.replaced_total += 1;
                if record.replaced.len() < MAX_REPLACED_KEPT {
                    record
                        .replaced
                        .push(json!({ "conn": old.0, "by": by.0, "at": now }));
                }
            }
            ServerEvent::Closed { conn } => {
                if let Some(key) = self.device_of.remove(&conn.0)
                    && let Some(record) = self.devices.get_mut(&key)
                {
                    record.live.retain(|live| *live != conn.0);
                }
            }
            _ => {}
        }
    }

    /// `{ devices: { "user:device": { live, logins, replaced: [{conn, by, at}], replacedTotal } } }`.
    pub fn report(&self) -> Value {
        let devices: serde_json::Map<String, Value> = self
            .devices
            .iter()
            .map(|(key, record)| {
                (
                    key.clone(),
                    json!({
                        "live": record.live,
                        "logins": record.logins,
                        "replaced": record.replaced,
                        "replacedTotal": record.replaced_total,
                    }),
                )
            })
            .collect();
        json!({ "devices": devices })
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::DeviceConnections;
    use crate::sim::{ConnId, ServerEvent};

    fn login(conn: u64) -> ServerEvent {
        ServerEvent::LoggedIn {
            conn: ConnId(conn),
            user: "1555".into(),
            device: 3,
            routing_info: None,
        }
    }

    #[test]
    fn a_replacement_is_recorded_with_both_connections() {
        let mut record = DeviceConnections::default();
        record.observe(10, &login(1));
        record.observe(
            20,
            &ServerEvent::Replaced {
                old: ConnId(1),
                by: ConnId(2),
                user: "1555".into(),
                device: 3,
            },
        );
        record.observe(20, &ServerEvent::Closed { conn: ConnId(1) });
        record.observe(21, &login(2));
        let report = record.report();
        let device = &report["devices"]["1555:3"];
        assert_eq!(device["live"], serde_json::json!([2]));
        assert_eq!(device["logins"], 2);
        assert_eq!(device["replacedTotal"], 1);
        assert_eq!(
            device["replaced"],
            serde_json::json!([{ "conn": 1, "by": 2, "at": 20 }])
        );
    }

    #[test]
    fn a_close_then_a_login_is_no_replacement() {
        let mut record = DeviceConnections::default();
        record.observe(10, &login(1));
        record.observe(11, &ServerEvent::Closed { conn: ConnId(1) });
        record.observe(12, &login(2));
        let report = record.report();
        assert_eq!(report["devices"]["1555:3"]["replacedTotal"], 0);
        assert_eq!(report["devices"]["1555:3"]["live"], serde_json::json!([2]));
    }
}
