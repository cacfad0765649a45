//! The AWS side of the HTTP port: protocol detection, the error shape every
//! AWS client understands, and dispatch of `X-Amz-Target` operations to the
//! service that owns them.

mod dispatch;
mod error;
mod protocol;

pub use dispatch::{AwsRequest, AwsRouter, Handler};
pub use error::AwsError;
pub use protocol::Protocol;
