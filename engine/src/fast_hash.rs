//! Hash maps for operator state keyed by row bytes. The standard library's
//! SipHash resists flooding by chosen keys, which an engine's own
//! per-process random seed already makes impractical, at a cost of a tenth
//! of a join's CPU; foldhash with a random seed is several times cheaper.

pub type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
