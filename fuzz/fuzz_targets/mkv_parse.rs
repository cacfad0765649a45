//! PutMedia's MKV parser on any bytes, in chunks of any size: an error or
//! fragments, never a panic, and never more buffered than a fragment.
#![no_main]

// The parser's own source files, at the crate root so that `super::ebml`
// resolves as it does in the video crate.
#[allow(dead_code)]
#[path = "../../video/src/mkv/ebml.rs"]
mod ebml;
#[allow(dead_code)]
#[path = "../../video/src/mkv/parse.rs"]
mod parse;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&chunk, body)) = data.split_first() else {
        return;
    };
    let limits = parse::Limits {
        max_fragment_bytes: 1 << 20,
        ..parse::Limits::default()
    };
    let mut parser = parse::Parser::new(limits);
    for piece in body.chunks(usize::from(chunk).max(1)) {
        if parser.push(piece).is_err() {
            return;
        }
    }
    let _ = parser.finish();
});
