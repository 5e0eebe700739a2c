//! The JSON gateway's request decoding.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    concord_server::fuzzing::gateway_decode(data);
});
