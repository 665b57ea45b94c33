//! `confab-store`: where Confab keeps its state.
//!
//! It owns the store traits, one per aggregate with its contract written on it ([`traits`]),
//! the embedded [`SqliteStore`] ([`sqlite`]), and the [`conformance`] suite that every backend
//! must pass (the Redis backend of the cluster runs the same suite).
//!
//! It must not decide chat rules (that is `confab-domain`) nor order writes to a channel (that is
//! the channel's actor): it stores what it is given, atomically, and reads it back.

pub mod conformance;
pub mod error;
pub mod metrics;
pub mod sqlite;
pub mod traits;

pub use error::{Conflict, StoreError};
pub use metrics::StoreMetrics;
pub use sqlite::{SqliteOptions, SqliteStore, Synchronous};
pub use traits::*;
