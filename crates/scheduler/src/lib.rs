//! The scheduler of cannectors.
