//! Encryption at rest lives in the store crate, which video fragments and
//! checkpoints share with stream records.

pub use runnel_store::crypto::*;
