//! The one error type of the store.

use serde::{Deserialize, Serialize};

/// Which uniqueness rule a write broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Conflict {
    /// A channel with this unique name exists in the service.
    ChannelUniqueName,
    /// A user with this identity exists in the service.
    UserIdentity,
    /// A resource with this SID exists.
    Sid,
}

/// Why a store operation failed. Serializable so that a node can hand the failure of a forwarded
/// command back to the node that forwarded it.
#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum StoreError {
    /// A uniqueness rule was broken; nothing was written.
    #[error("conflict: {0:?}")]
    Conflict(Conflict),
    /// The resource to update does not exist; nothing was written.
    #[error("not found")]
    NotFound,
    /// The backend failed (I/O, disk full, connection lost). The write may not have happened.
    #[error("storage backend failed: {0}")]
    Backend(String),
    /// Stored data could not be decoded.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The writer no longer holds the channel's lease (another node took it over); nothing was
    /// written, and the writer must give the channel up.
    #[error("fenced: the channel's lease moved on")]
    Fenced,
    /// A page cursor that this store did not hand out.
    #[error("invalid page token")]
    InvalidCursor,
    /// The store is shutting down and takes no more work.
    #[error("store is closed")]
    Closed,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}
