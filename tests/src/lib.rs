//! walink-sim: a simulated WhatsApp server and primary phone, and the harness that drives
//! independent implementations (the oracles) from walink's tests.

#![warn(unreachable_pub)]
#![forbid(unsafe_code)]

pub mod driver;
pub mod mock_server;
pub mod noise_server;
pub mod oracle;
pub mod record_map;
pub mod sim;
pub mod testkit;
