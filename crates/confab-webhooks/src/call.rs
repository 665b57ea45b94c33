//! One signed HTTP call of a webhook target, and what its answer means.

use std::time::{Duration, Instant};

use confab_domain::WebhookMethod;
use reqwest::Url;

use crate::signature::Signer;

/// How a call ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A 2xx answer, with its body (read up to [`MAX_ANSWER_BYTES`]).
    Ok(Vec<u8>),
    /// Another status.
    Status(u16),
    /// No answer within the timeout.
    Timeout,
    /// No connection, or the exchange broke off.
    Error(String),
    /// The URL is not one this node may call (not http(s), or not on the allow-list).
    NotAllowed(String),
}

impl Outcome {
    /// Whether Twilio would try again: a timeout, 429, 503 or 504. A failed connection is
    /// treated like a timeout (the target is not there yet).
    pub(crate) fn retryable(&self) -> bool {
        matches!(
            self,
            Outcome::Timeout | Outcome::Error(_) | Outcome::Status(429 | 503 | 504)
        )
    }
}

/// The most of a pre-event answer that is read: larger answers are cut (their JSON then does
/// not parse, and changes nothing).
pub(crate) const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The HTTP side: a client, the signer, and which hosts may be called.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) client: reqwest::Client,
    pub(crate) signer: Signer,
    pub(crate) allowed_hosts: Vec<String>,
}

impl Caller {
    /// The URL to call, checked against the allow-list.
    fn target(&self, url: &str) -> Result<Url, String> {
        let mut parsed = Url::parse(url).map_err(|e| format!("invalid URL: {e}"))?;
        // A fragment is never sent, so the receiver cannot sign it.
        parsed.set_fragment(None);
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("scheme {} is not http or https", parsed.scheme()));
        }
        let host = parsed.host_str().unwrap_or_default();
        if !self.allowed_hosts.is_empty()
            && !self
                .allowed_hosts
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(host))
        {
            return Err(format!("host {host} is not in webhooks.allowed_hosts"));
        }
        Ok(parsed)
    }

    /// Calls `url` once with `params`, signed, and reads the answer within `timeout`.
    /// `idempotency` is sent as `I-Twilio-Idempotency-Token` (the same for every attempt of one
    /// delivery).
    pub(crate) async fn call(
        &self,
        url: &str,
        method: WebhookMethod,
        params: &[(String, String)],
        idempotency: Option<&str>,
        timeout: Duration,
    ) -> (Outcome, Duration) {
        let started = Instant::now();
        let mut url = match self.target(url) {
            Ok(url) => url,
            Err(reason) => return (Outcome::NotAllowed(reason), started.elapsed()),
        };
        let request = match method {
            WebhookMethod::Post => {
                let body = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(params)
                    .finish();
                let signature = self.signer.sign(url.as_str(), params);
                self.client
                    .post(url)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .header("X-Twilio-Signature", signature)
                    .body(body)
            }
            WebhookMethod::Get => {
                url.query_pairs_mut().extend_pairs(params);
                let signature = self.signer.sign(url.as_str(), &[]);
                self.client.get(url).header("X-Twilio-Signature", signature)
            }
        };
        let request = match idempotency {
            Some(token) => request.header("I-Twilio-Idempotency-Token", token),
            None => request,
        };
        let outcome = match tokio::time::timeout(timeout, self.exchange(request)).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::Timeout,
        };
        (outcome, started.elapsed())
    }

    async fn exchange(&self, request: reqwest::RequestBuilder) -> Outcome {
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(e) if e.is_timeout() => return Outcome::Timeout,
            Err(e) => return Outcome::Error(e.to_string()),
        };
        let status = response.status();
        if !status.is_success() {
            return Outcome::Status(status.as_u16());
        }
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_ANSWER_BYTES.saturating_sub(body.len());
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if body.len() >= MAX_ANSWER_BYTES {
                        break;
                    }
                }
                Ok(None) => break,
                // The status was 2xx: the answer counts, its body is what arrived.
                Err(_) => break,
            }
        }
        Outcome::Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(allowed: &[&str]) -> Caller {
        Caller {
            client: reqwest::Client::new(),
            signer: Signer::new("t"),
            allowed_hosts: allowed.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn allow_list_restricts_hosts_when_set() {
        assert!(caller(&[]).target("http://10.0.0.1:9/x").is_ok());
        assert!(caller(&["hooks.internal"])
            .target("https://HOOKS.internal/x")
            .is_ok());
        assert!(caller(&["hooks.internal"])
            .target("http://127.0.0.1/x")
            .is_err());
        assert!(caller(&[]).target("ftp://h/x").is_err());
        assert!(caller(&[]).target("not a url").is_err());
    }

    #[test]
    fn retryable_answers_are_twilios() {
        for status in [429, 503, 504] {
            assert!(Outcome::Status(status).retryable());
        }
        for status in [400, 403, 500, 502] {
            assert!(!Outcome::Status(status).retryable());
        }
        assert!(Outcome::Timeout.retryable());
        assert!(!Outcome::NotAllowed("x".into()).retryable());
    }
}
