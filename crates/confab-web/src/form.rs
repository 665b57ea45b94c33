//! Form-encoded parameters (request bodies and query strings), as the Twilio helper libraries
//! send them: PascalCase keys, repeated keys for lists, `true`/`false` booleans, ISO 8601 dates.

use actix_web::web;
use confab_app::AppError;
use confab_domain::Timestamp;
use futures::StreamExt;

/// The parameters of one request, in the order they came.
#[derive(Debug, Clone, Default)]
pub struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    /// Parses `a=1&b=2&b=3`.
    pub fn parse(bytes: &[u8]) -> Self {
        Self {
            pairs: form_urlencoded::parse(bytes).into_owned().collect(),
        }
    }

    /// Reads a request body of at most `limit` bytes and parses it.
    pub async fn read(mut payload: web::Payload, limit: usize) -> Result<Self, AppError> {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk =
                chunk.map_err(|e| AppError::invalid(format!("Cannot read request body: {e}")))?;
            if body.len() + chunk.len() > limit {
                return Err(AppError::body_too_large(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Self::parse(&body))
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `key`, owned.
    pub fn string(&self, key: &str) -> Option<String> {
        self.get(key).map(str::to_owned)
    }

    /// Every value of a repeated `key`.
    pub fn all(&self, key: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Whether `key` is present at all.
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// A required value.
    pub fn required(&self, key: &str) -> Result<String, AppError> {
        self.string(key).ok_or_else(|| AppError::missing(key))
    }

    /// A boolean (`true`/`false`, any case).
    pub fn bool(&self, key: &str) -> Result<Option<bool>, AppError> {
        self.get(key)
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(AppError::invalid(format!("{key} must be true or false"))),
            })
            .transpose()
    }

    /// A non-negative integer.
    pub fn u64(&self, key: &str) -> Result<Option<u64>, AppError> {
        self.get(key)
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| AppError::invalid(format!("{key} must be a non-negative integer")))
            })
            .transpose()
    }

    /// A non-negative integer that fits 32 bits.
    pub fn u32(&self, key: &str) -> Result<Option<u32>, AppError> {
        self.u64(key)?
            .map(|v| u32::try_from(v).map_err(|_| AppError::invalid(format!("{key} is too large"))))
            .transpose()
    }

    /// An ISO 8601 date-time.
    pub fn timestamp(&self, key: &str) -> Result<Option<Timestamp>, AppError> {
        self.get(key)
            .map(|v| {
                confab_protocol::time::parse(v).ok_or_else(|| {
                    AppError::invalid(format!("{key} must be an ISO 8601 date-time"))
                })
            })
            .transpose()
    }

    /// A SID of a given kind.
    pub fn sid<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, AppError> {
        self.get(key)
            .map(|v| {
                v.parse::<T>()
                    .map_err(|_| AppError::invalid(format!("{key} is not a valid SID")))
            })
            .transpose()
    }

    /// Every key present, in order (repeated keys repeat).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.pairs.iter().map(|(k, _)| k.as_str())
    }

    /// The pairs whose key is one of `keys`, for keeping filters in paging URLs.
    pub fn pairs_of(&self, keys: &[&str]) -> Vec<(String, String)> {
        self.pairs
            .iter()
            .filter(|(k, _)| keys.contains(&k.as_str()))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_are_all_kept() {
        let form =
            Form::parse(b"Permission=sendMessage&Permission=leaveChannel&FriendlyName=a%20b");
        assert_eq!(form.all("Permission"), vec!["sendMessage", "leaveChannel"]);
        assert_eq!(form.get("FriendlyName"), Some("a b"));
    }

    #[test]
    fn typed_values_are_checked() {
        let form = Form::parse(b"A=true&B=nope&C=12&D=-1");
        assert_eq!(form.bool("A"), Ok(Some(true)));
        assert!(form.bool("B").is_err());
        assert_eq!(form.u64("C"), Ok(Some(12)));
        assert!(form.u64("D").is_err());
        assert_eq!(form.u64("E"), Ok(None));
    }
}
