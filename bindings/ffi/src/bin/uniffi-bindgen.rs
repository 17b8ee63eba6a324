//! The uniffi code generator, built from the same uniffi version as the library it reads.
//!
//! `./build.sh bindings` runs it as `uniffi-bindgen generate <cdylib> --language <lang>`.

#![warn(unreachable_pub)]
#![forbid(unsafe_code)]

fn main() {
    uniffi::uniffi_bindgen_main()
}
