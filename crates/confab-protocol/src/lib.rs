//! `confab-protocol`: Confab's wire shapes.
//!
//! It owns the JSON that the Twilio Chat v2 REST API returns ([`rest`]): resource bodies with
//! absolute `url` and `links`, list pages with Twilio's `meta`, and the error body; the realtime WebSocket frames
//! ([`realtime`]) shared by the server and the SDK; and the framing of Twilio's own client
//! protocol ([`twilsock`]).
//!
//! It must not do I/O or decide rules: it turns domain records into wire JSON and back, nothing
//! else.

pub mod realtime;
pub mod rest;
pub mod time;
pub mod twilsock;
