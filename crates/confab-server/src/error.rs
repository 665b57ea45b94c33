//! The one error type of the server crate.

/// Why a node could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(#[from] confab_store::StoreError),
    /// A listener could not be bound or a file could not be written.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}
