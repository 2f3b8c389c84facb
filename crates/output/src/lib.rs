//! The sinks of cannectors.
