//! The SQL crate's one integration-test binary: the sqllogictest files.

mod slt;
