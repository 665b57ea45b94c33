//! `confab-server`: the `confab` binary and the library that wires a node together.
//!
//! It owns the `confab chat` terminal client ([`chat`]), configuration ([`config`]: defaults, TOML file, `CONFAB_*` variables, flags), the
//! node's credentials ([`credentials`]), and [`Node`], which opens the store, starts the channel
//! runtime and serves the REST API and the admin endpoints, and stops them cleanly.
//!
//! It must not hold chat logic or wire formats: it only assembles the other crates.

mod admin;
pub mod chat;
pub mod config;
pub mod credentials;
pub mod error;
pub mod server;

pub use config::{Config, DevTokens, LogFormat};
pub use error::ServerError;
pub use server::{Node, Stopper};
