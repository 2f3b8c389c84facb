//! Cursor state of cannectors pipelines (placeholder until the state store lands).
