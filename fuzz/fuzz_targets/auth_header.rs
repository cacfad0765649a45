#![no_main]

// The server's SigV4 header and presigned-query parsers, compiled from
// their own source file, so the target tests what the binary runs.
#[allow(dead_code)]
#[path = "../../server/src/auth/header.rs"]
mod header;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (authorization, date) = text.split_once('\n').unwrap_or((&text, "20261207T000000Z"));
    let _ = header::from_header(authorization, Some(date));
    let _ = header::from_header(authorization, None);
    let _ = header::from_query(&text);
    let _ = header::canonical_query(&text, true);
    let _ = header::canonical_query(&text, false);
});
