//! Checkpoints of MATCH_RECOGNIZE and the event-time temporal join.
