//! Configurable limits and the validation of values against them. Every limit has a default
//! matching Twilio's and can be raised or lowered by configuration.

use serde::{Deserialize, Serialize};

use crate::error::DomainError;

/// The size limits a node enforces. Defaults follow Twilio Programmable Chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Largest message body, in bytes of UTF-8.
    pub message_body_bytes: usize,
    /// Largest message attributes JSON, in bytes.
    pub message_attributes_bytes: usize,
    /// Largest member attributes JSON, in bytes.
    pub member_attributes_bytes: usize,
    /// Largest channel attributes JSON, in bytes.
    pub channel_attributes_bytes: usize,
    /// Largest user attributes JSON, in bytes.
    pub user_attributes_bytes: usize,
    /// Longest friendly name, unique name or identity, in characters.
    pub name_chars: usize,
    /// Most members one channel may hold (a service may set a lower figure).
    pub members_per_channel: usize,
    /// Most channels one user may belong to (a service may set a lower figure).
    pub channels_per_user: usize,
    /// Longest `clientId` (a message's idempotency key), in bytes: it is stored with the
    /// message and its event and kept in the channel owner's memory.
    pub client_id_bytes: usize,
    /// Most users a service may have before a user's invite of an unknown identity (which
    /// creates its user record) is refused.
    pub users_per_service: u64,
    /// New users one user may create by inviting unknown identities, per minute (bursts of
    /// as many).
    pub invited_users_per_minute: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            message_body_bytes: 32 * 1024,
            message_attributes_bytes: 4 * 1024,
            member_attributes_bytes: 4 * 1024,
            channel_attributes_bytes: 16 * 1024,
            user_attributes_bytes: 16 * 1024,
            name_chars: 256,
            members_per_channel: 1000,
            channels_per_user: 1000,
            client_id_bytes: 64,
            users_per_service: 1_000_000,
            invited_users_per_minute: 60,
        }
    }
}

/// A JSON document kept as the text the client sent (Twilio returns attributes verbatim).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Attributes(String);

impl Default for Attributes {
    fn default() -> Self {
        Self("{}".to_owned())
    }
}

impl Attributes {
    /// Checks that `text` is JSON and within `limit` bytes.
    pub fn parse(field: &'static str, text: &str, limit: usize) -> Result<Self, DomainError> {
        if text.len() > limit {
            return Err(DomainError::TooLong {
                field: field.into(),
                limit,
                unit: "bytes".into(),
            });
        }
        serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(|_| {
            DomainError::InvalidAttributes {
                field: field.into(),
            }
        })?;
        Ok(Self(text.to_owned()))
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks a friendly name, unique name or identity against the name limit.
pub fn check_name(field: &'static str, value: &str, limits: &Limits) -> Result<(), DomainError> {
    if value.chars().count() > limits.name_chars {
        return Err(DomainError::TooLong {
            field: field.into(),
            limit: limits.name_chars,
            unit: "characters".into(),
        });
    }
    Ok(())
}

/// Checks an identity: non-empty, no control characters, within the name limit.
pub fn check_identity(
    field: &'static str,
    value: &str,
    limits: &Limits,
) -> Result<(), DomainError> {
    if value.is_empty() {
        return Err(DomainError::InvalidParameter {
            field: field.into(),
            reason: "must not be empty".to_owned(),
        });
    }
    if value.chars().any(char::is_control) {
        return Err(DomainError::InvalidParameter {
            field: field.into(),
            reason: "must not contain control characters".to_owned(),
        });
    }
    if value.chars().any(is_invisible) {
        return Err(DomainError::InvalidParameter {
            field: field.into(),
            reason: "must not contain invisible or direction-changing characters".to_owned(),
        });
    }
    check_name(field, value, limits)
}

/// Characters that draw nothing or reorder what follows, so that two different identities look
/// alike: direction marks, embeddings, overrides and isolates, zero-width and other blank
/// spaces, invisible operators, the byte order mark and the fillers used as blank names.
/// Format characters that real names and emoji need are allowed: the zero-width non-joiner
/// (Persian, Indic scripts), the zero-width joiner and variation selectors (emoji sequences),
/// tags (subdivision flags), the soft hyphen.
const INVISIBLE: &[(char, char)] = &[
    ('\u{061C}', '\u{061C}'),
    ('\u{115F}', '\u{1160}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200B}'),
    ('\u{200E}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{2069}'),
    ('\u{206A}', '\u{206F}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFA0}', '\u{FFA0}'),
    ('\u{FFF9}', '\u{FFFB}'),
];

/// Whether `c` draws nothing or changes the direction of what follows.
fn is_invisible(c: char) -> bool {
    INVISIBLE.iter().any(|&(from, to)| (from..=to).contains(&c))
}

/// Checks a message body against the body limit.
pub fn check_body(body: &str, limits: &Limits) -> Result<(), DomainError> {
    if body.len() > limits.message_body_bytes {
        return Err(DomainError::BodyTooLong {
            limit: limits.message_body_bytes,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_must_be_json() {
        assert!(Attributes::parse("Attributes", "{\"a\":1}", 100).is_ok());
        assert_eq!(
            Attributes::parse("Attributes", "{nope", 100),
            Err(DomainError::InvalidAttributes {
                field: "Attributes".into()
            })
        );
    }

    #[test]
    fn attributes_over_the_limit_are_refused() {
        let text = format!("\"{}\"", "x".repeat(100));
        assert!(matches!(
            Attributes::parse("Attributes", &text, 50),
            Err(DomainError::TooLong { limit: 50, .. })
        ));
    }

    #[test]
    fn names_count_characters_not_bytes() {
        let limits = Limits {
            name_chars: 3,
            ..Limits::default()
        };
        assert!(check_name("FriendlyName", "äöü", &limits).is_ok());
        assert!(check_name("FriendlyName", "äöüx", &limits).is_err());
    }

    #[test]
    fn identity_must_not_be_empty() {
        assert!(check_identity("Identity", "", &Limits::default()).is_err());
        assert!(check_identity("Identity", "a\nb", &Limits::default()).is_err());
        assert!(check_identity("Identity", "alice", &Limits::default()).is_ok());
    }

    #[test]
    fn identities_with_invisible_characters_are_refused() {
        let limits = Limits::default();
        for bad in [
            "ali\u{200B}ce",
            "\u{202E}ecila",
            "bob\u{FEFF}",
            "e\u{2066}ve",
            "\u{3164}",
        ] {
            assert!(
                check_identity("Identity", bad, &limits).is_err(),
                "{bad:?} was accepted"
            );
        }
        for good in [
            "alice",
            "Zoë",
            "王小明",
            "user@example.com",
            "emoji 😀",
            "👩\u{200D}💻",
            "❤\u{FE0F}",
            "می\u{200C}خواهم",
        ] {
            assert!(
                check_identity("Identity", good, &limits).is_ok(),
                "{good:?}"
            );
        }
    }
}
