//! Joins whose inputs are append-only and whose output is too: the hash
//! join kernel they share (`kernel`), the interval join (`interval`, which
//! with a state TTL also runs unwindowed inner joins), and the regular
//! inner join of two append-only inputs without a TTL (`append`), the
//! event-time temporal join (`temporal`), the lookup join against an
//! external table (`lookup`). Window
//! joins run the kernel once per closed window (`rank::closed_time`).
//! Joins that retract are in `updating`.

pub mod append;
pub mod interval;
pub mod kernel;
pub mod lookup;
pub mod temporal;
