//! `confab-bench`: Confab's benchmarks.
//!
//! The criterion micro-benchmarks are in `benches/` (`cargo bench -p confab-bench`):
//! `channel_append` measures message append through the channel actor into SQLite. The load
//! harness binary `confab-bench` (scenarios against running nodes) is the subject of its own issue.
