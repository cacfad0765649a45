//! Operators that order rows and keep some: functions over every row of a
//! time once the watermark has passed it (`closed_time`: window top-N and
//! the window join), deduplication that keeps each key's first row
//! (`dedup`), the top-N of an append-only input (`top_n`), and a stream
//! in event-time order (`temporal_sort`).

pub mod closed_time;
pub mod dedup;
pub mod temporal_sort;
pub mod top_n;
