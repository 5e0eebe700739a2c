//! The client port's HTTP/2 wrapper: any bytes after the preface (the
//! first byte also sets the read sizes), then any bytes without it.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    concord_server::fuzzing::h2fix(data, true);
    concord_server::fuzzing::h2fix(data, false);
});
