//! The httpPolling source of cannectors.
