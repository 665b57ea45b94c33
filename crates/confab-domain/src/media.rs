//! Media: a file uploaded to a service (Twilio's Media Content Service resource), attached to at
//! most one message, and the rules an upload is checked against before any byte is stored.

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::sid::{ChannelSid, MediaSid, MessageSid, ServiceSid};
use crate::time::Timestamp;

/// An uploaded file's record. Its bytes live in the media blob store under [`Media::blob_key`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Media {
    /// Its SID.
    pub sid: MediaSid,
    /// The service it was uploaded to.
    pub service_sid: ServiceSid,
    /// Its size in bytes.
    pub size: u64,
    /// Its MIME type, as the uploader gave it.
    pub content_type: String,
    /// Its file name, if the uploader gave one.
    pub filename: Option<String>,
    /// Who uploaded it: a user's identity, or `None` for the account.
    pub author: Option<String>,
    /// The channel of the message it is attached to, once attached.
    pub channel_sid: Option<ChannelSid>,
    /// The message it is attached to, once attached.
    pub message_sid: Option<MessageSid>,
    /// When it was uploaded.
    pub date_created: Timestamp,
    /// When it last changed (was attached).
    pub date_updated: Timestamp,
}

impl Media {
    /// Where its bytes are stored: one object per media, under its service.
    pub fn blob_key(&self) -> String {
        blob_key(self.service_sid, self.sid)
    }

    /// What a message that carries it shows of it.
    pub fn summary(&self) -> MessageMedia {
        MessageMedia {
            sid: self.sid,
            size: self.size,
            content_type: self.content_type.clone(),
            filename: self.filename.clone(),
        }
    }
}

/// The blob key of a media's bytes.
pub fn blob_key(service: ServiceSid, media: MediaSid) -> String {
    format!("{service}/{media}")
}

/// What a message shows of its media (Twilio's Message `media`: `sid`, `size`,
/// `content_type`, `filename`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageMedia {
    /// The media's SID.
    pub sid: MediaSid,
    /// Its size in bytes.
    pub size: u64,
    /// Its MIME type.
    pub content_type: String,
    /// Its file name, if it has one.
    pub filename: Option<String>,
}

impl MessageMedia {
    /// What a sender names: the SID alone. The channel's owner replaces it with the stored
    /// upload's details ([`Media::summary`]) before the message is applied.
    pub fn requested(sid: MediaSid) -> Self {
        Self {
            sid,
            size: 0,
            content_type: String::new(),
            filename: None,
        }
    }
}

/// The longest file name kept, in bytes.
pub const MAX_FILENAME_BYTES: usize = 255;

/// The longest content type accepted, in bytes.
pub const MAX_CONTENT_TYPE_BYTES: usize = 255;

/// Checks an upload's content type (`type/subtype`, optional parameters) against the node's
/// allow-list: an entry `image/*` allows every image type, `*/*` everything.
pub fn check_content_type(content_type: &str, allowed: &[String]) -> Result<(), DomainError> {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let well_formed = content_type.len() <= MAX_CONTENT_TYPE_BYTES
        && essence.split_once('/').is_some_and(|(kind, sub)| {
            let token = |s: &str| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
            };
            token(kind) && token(sub)
        });
    if !well_formed {
        return Err(DomainError::InvalidParameter {
            field: "Content-Type".into(),
            reason: "must be a MIME type such as image/png".into(),
        });
    }
    let (kind, _) = essence.split_once('/').unwrap_or_default();
    let allowed = allowed.iter().any(|a| {
        let a = a.trim().to_ascii_lowercase();
        a == "*/*" || a == essence || a.strip_suffix("/*").is_some_and(|k| k == kind)
    });
    if allowed {
        Ok(())
    } else {
        Err(DomainError::InvalidParameter {
            field: "Content-Type".into(),
            reason: format!("{essence} is not an allowed media type"),
        })
    }
}

/// Checks a file name: at most [`MAX_FILENAME_BYTES`], no path separators or control
/// characters (it becomes a download's file name).
pub fn check_filename(filename: &str) -> Result<(), DomainError> {
    if filename.len() > MAX_FILENAME_BYTES {
        return Err(DomainError::TooLong {
            field: "filename".into(),
            limit: MAX_FILENAME_BYTES,
            unit: "bytes".into(),
        });
    }
    if filename.is_empty()
        || filename
            .chars()
            .any(|c| c.is_control() || c == '/' || c == '\\' || c == '"')
    {
        return Err(DomainError::InvalidParameter {
            field: "filename".into(),
            reason: "must be a file name without path separators, quotes or control characters"
                .into(),
        });
    }
    Ok(())
}

/// The largest upload a service takes, in bytes: its `size_limit_mb` capped by the node's bound.
pub fn size_limit(service_limit_mb: u32, node_max_bytes: u64) -> u64 {
    (u64::from(service_limit_mb) * 1024 * 1024).min(node_max_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn content_types_are_matched_by_essence_and_wildcards() {
        let list = allowed(&["image/*", "application/pdf"]);
        assert!(check_content_type("image/png", &list).is_ok());
        assert!(check_content_type("IMAGE/JPEG; q=1", &list).is_ok());
        assert!(check_content_type("application/pdf", &list).is_ok());
        assert!(check_content_type("application/zip", &list).is_err());
        assert!(check_content_type("*/*", &allowed(&["*/*"])).is_err());
        assert!(check_content_type("text/plain", &allowed(&["*/*"])).is_ok());
        assert!(check_content_type("", &list).is_err());
        assert!(check_content_type("image", &list).is_err());
        assert!(check_content_type("image/", &list).is_err());
    }

    #[test]
    fn file_names_without_paths_or_controls() {
        assert!(check_filename("cat.png").is_ok());
        assert!(check_filename("résumé 2026.pdf").is_ok());
        assert!(check_filename("../etc/passwd").is_err());
        assert!(check_filename("a\\b").is_err());
        assert!(check_filename("a\nb").is_err());
        assert!(check_filename("").is_err());
        assert!(check_filename(&"x".repeat(256)).is_err());
    }

    #[test]
    fn the_node_caps_the_service_limit() {
        assert_eq!(size_limit(150, 10 << 20), 10 << 20);
        assert_eq!(size_limit(1, 10 << 20), 1 << 20);
    }
}
