//! Writes `include/concord.h` from the `extern "C"` items (cbindgen). The
//! header is committed; CI fails when it differs from what this writes.

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it");
    let config = cbindgen::Config::from_file(format!("{dir}/cbindgen.toml")).expect("cbindgen.toml reads");
    match cbindgen::generate_with_config(&dir, config) {
        Ok(bindings) => {
            bindings.write_to_file(format!("{dir}/include/concord.h"));
        }
        Err(e) => panic!("cbindgen: {e}"),
    }
}
