//! A small REST client for tests: form-encoded requests with HTTP Basic auth, JSON answers.

/// A status and a JSON body (`Null` when the body is empty or not JSON).
#[derive(Debug, Clone)]
pub struct RestResponse {
    /// HTTP status.
    pub status: u16,
    /// The body as JSON.
    pub body: serde_json::Value,
}

impl RestResponse {
    /// The Twilio error code of an error body.
    pub fn code(&self) -> Option<u64> {
        self.body.get("code").and_then(|c| c.as_u64())
    }

    /// A string field of the body.
    pub fn str(&self, key: &str) -> String {
        self.body
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    }
}

/// Talks to one node's REST API.
#[derive(Debug, Clone)]
pub struct RestClient {
    base: String,
    user: String,
    password: String,
    http: reqwest::Client,
    headers: Vec<(String, String)>,
}

impl RestClient {
    /// A client for `base` (e.g. `http://127.0.0.1:1234`) with these credentials.
    pub fn new(base: String, user: &str, password: &str) -> Self {
        Self {
            base,
            user: user.to_owned(),
            password: password.to_owned(),
            http: reqwest::Client::new(),
            headers: Vec::new(),
        }
    }

    /// The same client, sending `name: value` with every request (e.g.
    /// `X-Twilio-Webhook-Enabled: true`).
    pub fn with_header(&self, name: &str, value: &str) -> Self {
        let mut client = self.clone();
        client.headers.push((name.to_owned(), value.to_owned()));
        client
    }

    /// The same node with other credentials.
    pub fn with_credentials(&self, user: &str, password: &str) -> Self {
        Self::new(self.base.clone(), user, password)
    }

    async fn send(&self, mut request: reqwest::RequestBuilder) -> RestResponse {
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let response = match request
            .basic_auth(&self.user, Some(&self.password))
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                return RestResponse {
                    status: 0,
                    body: serde_json::json!({ "transport_error": e.to_string() }),
                }
            }
        };
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        RestResponse { status, body }
    }

    /// `GET path` (path starts with `/v2`), or an absolute URL.
    pub async fn get(&self, path: &str) -> RestResponse {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        self.send(self.http.get(url)).await
    }

    /// `POST path` with form parameters (repeated keys allowed).
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> RestResponse {
        let body: String = form_body(form);
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body),
        )
        .await
    }

    /// `POST path` with a raw body.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> RestResponse {
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .header("Content-Type", content_type)
                .body(body),
        )
        .await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> RestResponse {
        self.send(self.http.delete(format!("{}{path}", self.base)))
            .await
    }
}

fn form_body(form: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in form.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(&encode(k));
        out.push('=');
        out.push_str(&encode(v));
    }
    out
}

fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
