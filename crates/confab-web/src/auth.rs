//! HTTP Basic authentication of REST calls: the account SID with the auth token, or an API key
//! SID with its secret. Secrets are compared in constant time.

use base64::Engine;
use confab_domain::{AccountSid, ApiKeySid};
use subtle::ConstantTimeEq;

/// The credentials a node accepts.
#[derive(Clone)]
pub struct Credentials {
    /// The account SID (`AC…`).
    pub account_sid: AccountSid,
    /// The account's auth token.
    pub auth_token: String,
    /// The API key SID (`SK…`).
    pub api_key_sid: ApiKeySid,
    /// The API key's secret (also signs access tokens).
    pub api_key_secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("account_sid", &self.account_sid)
            .field("api_key_sid", &self.api_key_sid)
            .finish_non_exhaustive()
    }
}

fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

impl Credentials {
    /// Whether an `Authorization` header value grants access.
    pub fn check_header(&self, header: Option<&str>) -> bool {
        let Some(encoded) = header.and_then(|h| h.strip_prefix("Basic ")) else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        let Ok(text) = String::from_utf8(decoded) else {
            return false;
        };
        let Some((user, password)) = text.split_once(':') else {
            return false;
        };
        let account = same(user, &self.account_sid.to_string()) & same(password, &self.auth_token);
        let key = same(user, &self.api_key_sid.to_string()) & same(password, &self.api_key_secret);
        account | key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials {
            account_sid: AccountSid::from_bits(1),
            auth_token: "token".into(),
            api_key_sid: ApiKeySid::from_bits(2),
            api_key_secret: "secret".into(),
        }
    }

    fn basic(user: &str, password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    }

    #[test]
    fn account_and_api_key_are_accepted() {
        let c = creds();
        assert!(c.check_header(Some(&basic(&c.account_sid.to_string(), "token"))));
        assert!(c.check_header(Some(&basic(&c.api_key_sid.to_string(), "secret"))));
    }

    #[test]
    fn wrong_or_mixed_credentials_are_refused() {
        let c = creds();
        assert!(!c.check_header(Some(&basic(&c.account_sid.to_string(), "secret"))));
        assert!(!c.check_header(Some(&basic(&c.api_key_sid.to_string(), "token"))));
        assert!(!c.check_header(Some("Basic !!!")));
        assert!(!c.check_header(Some("Bearer x")));
        assert!(!c.check_header(None));
    }
}
