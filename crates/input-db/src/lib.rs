//! The database source of cannectors.
