//! Checkpoints of the differential operators: the updating GROUP BY,
//! top-N and regular join over changelogs.
