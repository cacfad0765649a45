//! Matroska as Kinesis Video speaks it: read from PutMedia bodies
//! (`parse`), written for GetMedia (`write`), over EBML's integers
//! (`ebml`). Hand-written rather than a crate: the maintained Matroska
//! crates read whole files, and PutMedia needs a parser that takes bytes
//! as they arrive and bounds what it buffers.

pub mod ebml;
pub mod parse;
pub mod write;

pub use parse::{
    Event, Fragment, Frame, Header, Limits, MAX_TAG_NAME_BYTES, MAX_TAG_VALUE_BYTES, MkvError,
    Parser, ProducerTag, RESERVED_TAG_PREFIX, Track, frames_of, producer_tags,
};

#[cfg(test)]
mod tests;
