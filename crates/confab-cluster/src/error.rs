//! The one error type of the channel runtime.

use confab_domain::DomainError;
use confab_store::StoreError;

/// Why a channel operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The domain refused the command; nothing changed.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The store refused or failed the write. For `StoreError::Backend` the outcome is unknown.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The channel's service does not exist.
    #[error("service not found")]
    ServiceNotFound,
    /// The channel's actor could not take the command (shutting down); nothing changed.
    #[error("channel unavailable: {0}")]
    Unavailable(&'static str),
}
