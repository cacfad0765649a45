#![no_main]

include!("server_modules.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    decoders::exercise(protocol::Protocol::Json, data);
});
