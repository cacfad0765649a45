#![no_main]

// The server's decoders, compiled here from their own source files so the
// fuzz targets test exactly what the binary runs.
#[allow(dead_code)]
mod aws {
    #[path = "../../../server/src/aws/error.rs"]
    mod error;
    #[path = "../../../server/src/aws/protocol.rs"]
    mod protocol;
    pub use error::AwsError;
    pub use protocol::Protocol;
}

#[allow(dead_code)]
mod kinesis {
    #[path = "../../../server/src/kinesis/codec.rs"]
    pub mod codec;
    #[path = "../../../server/src/kinesis/request.rs"]
    pub mod request;
}

#[path = "decoders.rs"]
mod decoders;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    decoders::exercise(aws::Protocol::Cbor, data);
});
