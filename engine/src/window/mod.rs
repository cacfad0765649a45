//! Windows over event time: which windows a row belongs to (`kind`), the
//! rows of a window table function given their window columns (`assign`),
//! and window aggregation: its per-window state (`state`), the operator
//! that fires windows as the watermark passes them (`operator`), and
//! session windows (`session`).

pub mod assign;
pub mod kind;
pub mod operator;
pub mod session;
pub mod state;
