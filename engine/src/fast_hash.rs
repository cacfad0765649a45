//! Hash maps for operator state keyed by row bytes. The standard library's
//! SipHash resists flooding by chosen keys, which an engine's own
//! per-process random seed already makes impractical, at a cost of a tenth
//! of a join's CPU; hashbrown's default, foldhash with a random seed, is
//! several times cheaper, and `entry_ref` looks a borrowed key up once.

pub type HashMap<K, V> = hashbrown::HashMap<K, V>;
pub type HashSet<K> = hashbrown::HashSet<K>;
