//! Opening a single member's log whose segment holds any bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    concord_core::fuzzing::log_open(data);
});
