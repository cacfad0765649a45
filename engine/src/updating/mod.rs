//! Updating operators on differential-dataflow: results that change as
//! input arrives and retract what they emitted (a GROUP BY of a changelog
//! whose aggregates cannot take rows back in any order, outer, semi, anti
//! and changelog joins, the top-N of a changelog), and the state TTL's
//! expirer in front of them. Rows go into differential as Arrow row bytes
//! with `+1`/`-1` multiplicities and come out as a changelog (`__op`, see
//! `crate::changelog`). Append-only inputs take faster paths that are not
//! differential: `grouped`, `rank::top_n`, `join::append`.

pub mod expiry;
pub mod group_aggregate;
pub mod join;
pub mod replay;
pub mod top_n;
