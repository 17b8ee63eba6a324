//! walink ffi
