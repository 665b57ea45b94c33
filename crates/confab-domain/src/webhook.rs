//! `WebhookJob`: one call of one webhook target for one event, as it is stored until delivered.

use serde::{Deserialize, Serialize};

use crate::sid::{ChannelSid, ServiceSid, WebhookJobSid};
use crate::time::Timestamp;

/// How a webhook target is called: `POST` with the parameters as a form, or `GET` with them in
/// the query string (Twilio's `WebhookMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum WebhookMethod {
    /// Parameters in the query string.
    Get,
    /// Parameters as an `application/x-www-form-urlencoded` body.
    #[default]
    Post,
}

impl WebhookMethod {
    /// Reads Twilio's spelling (`GET`, `POST`, any case); `None` (the setting is unset) is `POST`.
    pub fn parse(value: Option<&str>) -> Option<Self> {
        match value.map(str::to_ascii_uppercase).as_deref() {
            None | Some("") | Some("POST") => Some(Self::Post),
            Some("GET") => Some(Self::Get),
            Some(_) => None,
        }
    }

    /// `GET` or `POST`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

/// A post-event webhook call waiting to be delivered. Committed with the event it reports (in
/// the same store transaction), deleted once delivered or given up; retried until then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookJob {
    /// Its SID.
    pub sid: WebhookJobSid,
    /// The service the event happened in.
    pub service_sid: ServiceSid,
    /// The channel, for channel events.
    pub channel_sid: Option<ChannelSid>,
    /// Twilio's event name (`onMessageSent`, ...), also in `params` as `EventType`.
    pub event_type: String,
    /// Where to call.
    pub url: String,
    /// How to call.
    pub method: WebhookMethod,
    /// The parameters, in the order they are sent (the signature sorts them itself).
    pub params: Vec<(String, String)>,
    /// Retries allowed after the first attempt (the target's retry count).
    pub retries: u32,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the event happened.
    pub created: Timestamp,
}

impl WebhookJob {
    /// Whether another attempt is allowed after `self.attempts` attempts.
    pub fn may_retry(&self) -> bool {
        self.attempts <= self.retries
    }
}
