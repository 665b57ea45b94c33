//! `confab-protocol`: Confab's wire shapes.
//!
//! It owns the JSON that the Twilio Chat v2 REST API returns ([`rest`]): resource bodies with
//! absolute `url` and `links`, list pages with Twilio's `meta`, and the error body; and the realtime WebSocket frames
//! ([`realtime`]) shared by the server and the SDK.
//!
//! It must not do I/O or decide rules: it turns domain records into wire JSON and back, nothing
//! else.

pub mod realtime;
pub mod rest;
pub mod time;
