//! walink wasm
