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
    /// This node does not own the channel (another node holds its lease, or this node is
    /// draining); nothing ran. The router sends the command to `holder` or to placement's choice.
    #[error("not the channel's owner (held by {holder:?})")]
    NotOwner {
        /// The node that holds the channel's lease, if known.
        holder: Option<String>,
    },
    /// The channel's owner could not be reached in time (cluster mode). For a command that was
    /// sent, the outcome is unknown; retrying with the same idempotency key is safe.
    #[error("channel owner unreachable: {0}")]
    Unreachable(String),
    /// The node a command was forwarded to is gone or stalled: nobody reads its inbox, or it
    /// cannot commit (it lost the channel's lease, or never took it) while the command waits
    /// for its answer. The router sends the command elsewhere and passes that node over when it
    /// places the channel; at the routing deadline it becomes `Unreachable`.
    #[error("the channel's owner is gone or stalled")]
    OwnerGone {
        /// Whether the command may have run there (it was delivered before the node stalled).
        maybe_ran: bool,
    },
    /// The service's pre-event webhook refused the action, or could not be asked; nothing
    /// changed.
    #[error(transparent)]
    Webhook(#[from] confab_webhooks::WebhookError),
}
