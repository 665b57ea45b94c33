//! Access tokens in Twilio's format: a JWT signed with HS256 by an API key secret, with header
//! `cty: twilio-fpa;v=1`, `iss` the API key SID, `sub` the account SID, and the chat grant in
//! `grants`. Tokens minted by the Twilio helper libraries' `AccessToken` + `ChatGrant` for
//! Confab's API key are accepted.

use confab_domain::ServiceSid;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::auth::Credentials;

/// What a valid token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The user's identity.
    pub identity: String,
    /// The chat service.
    pub service_sid: ServiceSid,
    /// Expiry, seconds since the epoch.
    pub expires_at: u64,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Malformed, badly signed, wrong issuer or account, or without a chat grant.
    #[error("token rejected: {0}")]
    Invalid(String),
    /// Past its expiry.
    #[error("token expired")]
    Expired,
    /// Valid for longer than the node accepts (Twilio's limit, and the default, is 24 hours).
    #[error("token lifetime exceeds {max_secs} seconds")]
    TooLong {
        /// The longest lifetime accepted.
        max_secs: u64,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct ChatGrant {
    service_sid: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Grants {
    identity: Option<String>,
    chat: Option<ChatGrant>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    jti: String,
    iss: String,
    sub: String,
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
    /// A number, possibly with a fraction (JWT's NumericDate); written as an integer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<serde_json::Number>,
    grants: Grants,
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Mints a token for `identity` in `service`, valid for `ttl_secs`.
pub fn mint(
    credentials: &Credentials,
    identity: &str,
    service: ServiceSid,
    ttl_secs: u64,
) -> Result<String, TokenError> {
    let now = now_secs();
    let mut header = Header::new(Algorithm::HS256);
    header.cty = Some("twilio-fpa;v=1".to_owned());
    let claims = Claims {
        jti: format!("{}-{now}", credentials.api_key_sid),
        iss: credentials.api_key_sid.to_string(),
        sub: credentials.account_sid.to_string(),
        exp: now + ttl_secs,
        nbf: None,
        iat: Some(now.into()),
        grants: Grants {
            identity: Some(identity.to_owned()),
            chat: Some(ChatGrant {
                service_sid: service.to_string(),
            }),
        },
    };
    jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_secret(credentials.api_key_secret.as_bytes()),
    )
    .map_err(|e| TokenError::Invalid(e.to_string()))
}

/// Checks a token's signature, issuer, account, expiry, lifetime and chat grant. The lifetime
/// runs from the token's start (`nbf`, else `iat`, else now) to `exp`, and may be at most
/// `max_lifetime_secs`: a leaked token must not stay good for years.
pub fn verify(
    credentials: &Credentials,
    token: &str,
    max_lifetime_secs: u64,
) -> Result<Grant, TokenError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 5;
    validation.validate_nbf = true;
    validation.set_issuer(&[credentials.api_key_sid.to_string()]);
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    let data = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(credentials.api_key_secret.as_bytes()),
        &validation,
    )
    .map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
        _ => TokenError::Invalid(e.to_string()),
    })?;
    let claims = data.claims;
    // Never later than now: a start in the future would not shorten how long the token works.
    let now = now_secs();
    let start = claims
        .nbf
        .or(claims
            .iat
            .and_then(|iat| iat.as_f64())
            .map(|iat| iat as u64))
        .unwrap_or(now)
        .min(now);
    if claims.exp.saturating_sub(start) > max_lifetime_secs {
        return Err(TokenError::TooLong {
            max_secs: max_lifetime_secs,
        });
    }
    if claims.sub != credentials.account_sid.to_string() {
        return Err(TokenError::Invalid("token is for another account".into()));
    }
    let identity = claims
        .grants
        .identity
        .filter(|i| !i.is_empty())
        .ok_or_else(|| TokenError::Invalid("token has no identity".into()))?;
    let service_sid = claims
        .grants
        .chat
        .and_then(|c| c.service_sid.parse().ok())
        .ok_or_else(|| TokenError::Invalid("token has no chat grant".into()))?;
    Ok(Grant {
        identity,
        service_sid,
        expires_at: claims.exp,
    })
}

#[cfg(test)]
mod tests {
    use confab_domain::{AccountSid, ApiKeySid};

    use super::*;

    const DAY: u64 = 24 * 3600;

    fn creds() -> Credentials {
        Credentials {
            account_sid: AccountSid::from_bits(1),
            auth_token: "t".into(),
            api_key_sid: ApiKeySid::from_bits(2),
            api_key_secret: "secret".into(),
        }
    }

    #[test]
    fn minted_tokens_verify() {
        let c = creds();
        let token = mint(&c, "alice", ServiceSid::from_bits(3), 60).unwrap();
        let grant = verify(&c, &token, DAY).unwrap();
        assert_eq!(grant.identity, "alice");
        assert_eq!(grant.service_sid, ServiceSid::from_bits(3));
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.cty.as_deref(), Some("twilio-fpa;v=1"));
    }

    #[test]
    fn forged_and_foreign_tokens_are_refused() {
        let c = creds();
        let mut other = creds();
        other.api_key_secret = "other".into();
        let forged = mint(&other, "alice", ServiceSid::from_bits(3), 60).unwrap();
        assert!(matches!(
            verify(&c, &forged, DAY),
            Err(TokenError::Invalid(_))
        ));
        let mut foreign = creds();
        foreign.account_sid = AccountSid::from_bits(9);
        let foreign = mint(&foreign, "alice", ServiceSid::from_bits(3), 60).unwrap();
        assert!(matches!(
            verify(&c, &foreign, DAY),
            Err(TokenError::Invalid(_))
        ));
        assert!(matches!(
            verify(&c, "not.a.jwt", DAY),
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn expired_tokens_are_refused_as_expired() {
        let c = creds();
        let mut header = Header::new(Algorithm::HS256);
        header.cty = Some("twilio-fpa;v=1".into());
        let claims = Claims {
            jti: "x".into(),
            iss: c.api_key_sid.to_string(),
            sub: c.account_sid.to_string(),
            exp: now_secs() - 3600,
            nbf: None,
            iat: None,
            grants: Grants {
                identity: Some("a".into()),
                chat: Some(ChatGrant {
                    service_sid: ServiceSid::from_bits(3).to_string(),
                }),
            },
        };
        let token =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(b"secret")).unwrap();
        assert_eq!(verify(&c, &token, DAY), Err(TokenError::Expired));
    }

    #[test]
    fn tokens_valid_for_longer_than_allowed_are_refused() {
        let c = creds();
        let century = mint(&c, "alice", ServiceSid::from_bits(3), 100 * 365 * DAY).unwrap();
        assert_eq!(
            verify(&c, &century, DAY),
            Err(TokenError::TooLong { max_secs: DAY })
        );
        let day = mint(&c, "alice", ServiceSid::from_bits(3), DAY).unwrap();
        assert!(verify(&c, &day, DAY).is_ok());
        assert!(verify(&c, &day, DAY - 60).is_err());
    }

    #[test]
    fn a_start_in_the_future_does_not_lengthen_a_token() {
        let c = creds();
        let mut header = Header::new(Algorithm::HS256);
        header.cty = Some("twilio-fpa;v=1".into());
        let far = now_secs() + 100 * 365 * DAY;
        let claims = Claims {
            jti: "x".into(),
            iss: c.api_key_sid.to_string(),
            sub: c.account_sid.to_string(),
            exp: far,
            nbf: None,
            iat: Some(far.into()),
            grants: Grants {
                identity: Some("a".into()),
                chat: Some(ChatGrant {
                    service_sid: ServiceSid::from_bits(3).to_string(),
                }),
            },
        };
        let token =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(b"secret")).unwrap();
        assert_eq!(
            verify(&c, &token, DAY),
            Err(TokenError::TooLong { max_secs: DAY })
        );
    }
}
