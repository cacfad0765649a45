// The server's decoders, compiled into each fuzz target from their own
// source files so the targets test exactly what the binary runs. They sit
// at the crate root so their `super::` and `crate::aws` paths resolve as in
// the server.
#[allow(dead_code)]
#[path = "../../server/src/aws/error.rs"]
mod error;
#[allow(dead_code)]
#[path = "../../server/src/aws/protocol.rs"]
mod protocol;
#[allow(dead_code)]
#[path = "../../server/src/aws/codec.rs"]
mod codec;
#[allow(dead_code)]
#[path = "../../server/src/aws/request.rs"]
mod request;
#[allow(dead_code)]
#[path = "../../server/src/aws/shapes.rs"]
mod shapes;

mod aws {
    pub use crate::error::AwsError;
    pub use crate::protocol::Protocol;
    pub(crate) use crate::{codec, request, shapes};
}

#[path = "decoders.rs"]
mod decoders;
