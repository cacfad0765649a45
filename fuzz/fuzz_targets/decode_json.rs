#![no_main]

// The server's decoders, compiled here from their own source files so the
// fuzz targets test exactly what the binary runs. They sit at the crate
// root so their `super::` and `crate::aws` paths resolve as in the server.
#[allow(dead_code)]
#[path = "../../server/src/aws/error.rs"]
mod error;
#[allow(dead_code)]
#[path = "../../server/src/aws/protocol.rs"]
mod protocol;
#[allow(dead_code)]
#[path = "../../server/src/kinesis/codec.rs"]
mod codec;
#[allow(dead_code)]
#[path = "../../server/src/kinesis/request.rs"]
mod request;

use protocol::Protocol;

mod aws {
    pub use crate::error::AwsError;
    pub use crate::protocol::Protocol;
}

mod kinesis {
    pub(crate) use crate::{codec, request};
}

#[path = "decoders.rs"]
mod decoders;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    decoders::exercise(Protocol::Json, data);
});
