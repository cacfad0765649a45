//! Event time. A timely timestamp in Runnel is a watermark: milliseconds
//! since the epoch, such that every record travelling at time `t` has an
//! event time `>= t`.

/// Milliseconds since the epoch, signed so that windows before 1970 work.
pub type Millis = i64;

/// The timely timestamp: a watermark in milliseconds.
pub type Watermark = Millis;

/// The wall clock, for processing time.
pub fn wall_clock_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}
