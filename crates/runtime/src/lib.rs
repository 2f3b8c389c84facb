//! The executor of cannectors.
