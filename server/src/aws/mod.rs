//! The AWS side of the HTTP port, shared by every service: protocol
//! detection (`protocol`), the error shape every AWS client understands
//! (`error`), request bodies in JSON 1.1 and CBOR and responses in either
//! (`codec`) and checked against botocore's request shapes (`shapes`),
//! fields read with AWS's validation rules and its `N validation
//! errors detected` messages (`request`), paging tokens (`token`), and
//! dispatch of `X-Amz-Target` operations and REST paths to the service that
//! owns them (`dispatch`).

pub mod budget;
pub mod codec;
mod dispatch;
mod error;
mod protocol;
pub mod request;
pub mod shapes;
pub mod token;

pub use dispatch::{AwsRequest, AwsRouter, Handler, RestHandler, RestRequest};
pub use error::AwsError;
pub use protocol::Protocol;
