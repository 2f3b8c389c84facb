//! Records, batches, the Source and Sink traits and the shared HTTP client of cannectors.
