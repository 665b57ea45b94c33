//! The one error type of the media blob stores.

/// Why a blob operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The key is not one the contract allows; nothing was read or written.
    #[error("invalid blob key {0:?}")]
    InvalidKey(String),
    /// The backend failed (I/O, the object store's answer). A put may or may not have happened.
    #[error("media storage failed: {0}")]
    Backend(String),
    /// The backend's configuration is unusable.
    #[error("media storage is misconfigured: {0}")]
    Config(String),
}

impl From<std::io::Error> for MediaError {
    fn from(e: std::io::Error) -> Self {
        MediaError::Backend(e.to_string())
    }
}

impl From<object_store::Error> for MediaError {
    fn from(e: object_store::Error) -> Self {
        MediaError::Backend(e.to_string())
    }
}
