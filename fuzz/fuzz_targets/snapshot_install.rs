//! Installing a received snapshot file of any bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    concord_core::fuzzing::snapshot_install(data);
});
