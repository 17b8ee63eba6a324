//! Generates the Rust types of every `.proto` file in `proto/` with prost, using protox so that no
//! system `protoc` is needed.

use std::error::Error;
use std::fs;

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=proto");
    let mut files: Vec<_> = fs::read_dir("proto")?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "proto"))
        .collect();
    files.sort();
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let descriptors = protox::compile(&files, ["proto"])?;
    prost_build::Config::new()
        .prost_path("crate::proto::prost_shim")
        .compile_fds(descriptors)?;
    Ok(())
}
