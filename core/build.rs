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
    // Nested types live in generated submodules (`wa::message`, ...), which do not see the
    // imports of `proto::wa`: each gets `proto::NoFieldPath` in scope itself.
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    for name in ["wa.rs", "walink.rs"] {
        let path = out.join(name);
        let code = fs::read_to_string(&path)?;
        let mut with_import = String::with_capacity(code.len() + 4096);
        for line in code.lines() {
            with_import.push_str(line);
            with_import.push('\n');
            if line.trim_start().starts_with("pub mod ") && line.ends_with('{') {
                with_import
                    .push_str("#[allow(unused_imports)] use crate::proto::NoFieldPath as _;\n");
            }
        }
        fs::write(&path, with_import)?;
    }
    Ok(())
}
