//! Checkpoints of the operators that read rows in event-time order: OVER
//! aggregations and ORDER BY on a time attribute.
