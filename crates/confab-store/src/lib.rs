//! `confab-store`: where Confab keeps its state.
//!
//! It owns the store traits, one per aggregate with its contract written on it ([`traits`]),
//! the embedded [`SqliteStore`] ([`sqlite`]), the cluster's [`RedisStore`] ([`redis`]), and the
//! [`conformance`] suite that every backend must pass.
//!
//! It must not decide chat rules (that is `confab-domain`) nor order writes to a channel (that is
//! the channel's actor): it stores what it is given, atomically, and reads it back.

#[cfg(feature = "conformance")]
pub mod conformance;
pub mod error;
pub mod metrics;
pub mod redis;
pub mod sqlite;
pub mod traits;

pub use error::{Conflict, StoreError};
pub use metrics::StoreMetrics;
pub use redis::{RedisOptions, RedisStore};
pub use sqlite::{SqliteOptions, SqliteStore, Synchronous};
pub use traits::*;
