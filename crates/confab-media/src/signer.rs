//! Signed temporary URLs of media content: whoever holds one may download the media until it
//! expires, without credentials (what Twilio's `content_direct_temporary` link is for: an `<img
//! src>` or a download link).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;
use subtle::ConstantTimeEq;

/// Signs and checks `(media path, expiry)` pairs with HMAC-SHA256. Every node of a cluster must
/// have the same key, so that a URL signed by one is honoured by all.
#[derive(Clone)]
pub struct UrlSigner {
    key: hmac::Key,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner")
    }
}

impl UrlSigner {
    /// A signer with a key derived from `secret` (for instance the account's auth token, which
    /// every node shares).
    pub fn new(secret: &[u8]) -> Self {
        let derive = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let key = hmac::sign(&derive, b"confab media content urls v1");
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, key.as_ref()),
        }
    }

    fn tag(&self, path: &str, expires: i64) -> hmac::Tag {
        hmac::sign(&self.key, format!("{path}\n{expires}").as_bytes())
    }

    /// The signature of `path` valid until `expires` (Unix seconds), URL-safe base64.
    pub fn sign(&self, path: &str, expires: i64) -> String {
        URL_SAFE_NO_PAD.encode(self.tag(path, expires).as_ref())
    }

    /// Whether `signature` signs `path` until `expires` and `now` (Unix seconds) is before it.
    pub fn verify(&self, path: &str, expires: i64, signature: &str, now: i64) -> bool {
        let Ok(given) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        let good: bool = self
            .tag(path, expires)
            .as_ref()
            .ct_eq(given.as_slice())
            .into();
        good && now < expires
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_holds_for_its_path_until_it_expires() {
        let signer = UrlSigner::new(b"token");
        let sig = signer.sign("/v1/Services/IS1/Media/ME1", 1000);
        assert!(signer.verify("/v1/Services/IS1/Media/ME1", 1000, &sig, 999));
        assert!(!signer.verify("/v1/Services/IS1/Media/ME1", 1000, &sig, 1000));
        assert!(!signer.verify("/v1/Services/IS1/Media/ME2", 1000, &sig, 1));
        assert!(!signer.verify("/v1/Services/IS1/Media/ME1", 1001, &sig, 1));
        assert!(!signer.verify("/v1/Services/IS1/Media/ME1", 1000, "!!", 1));
        let other = UrlSigner::new(b"another token");
        assert!(!other.verify("/v1/Services/IS1/Media/ME1", 1000, &sig, 1));
    }
}
