//! The `Client` state machine that ties every protocol layer together.

pub mod messaging;
