//! Media in the Rust SDK: uploading a file to the node's media API (`POST
//! /v1/Services/{service}/Media`, the user's token in `X-Twilio-Token`), sending it as a
//! message, and fetching a media's temporary content URL (like twilio-chat's
//! `Media.getContentTemporaryUrl()`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use serde_json::Value;

use crate::{lock, Channel, Client, ClientError, ErrorBody, Request};

/// A file to send.
#[derive(Debug, Clone)]
pub struct MediaFile {
    /// Its MIME type (`image/png`).
    pub content_type: String,
    /// Its file name, if it has one.
    pub filename: Option<String>,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// A media resource as the node answers it.
#[derive(Debug, Clone, Deserialize)]
pub struct MediaResource {
    /// `ME…`
    pub sid: String,
    /// Size in bytes.
    pub size: u64,
    /// MIME type.
    pub content_type: String,
    /// File name, if it has one.
    pub filename: Option<String>,
    /// The message it is attached to, once sent.
    pub message_sid: Option<String>,
    /// Its URLs.
    pub links: MediaLinks,
}

/// A media's URLs.
#[derive(Debug, Clone, Deserialize)]
pub struct MediaLinks {
    /// The content, for callers with credentials.
    pub content: String,
    /// The content for anyone holding the URL, for a few minutes.
    pub content_direct_temporary: String,
}

/// The node's HTTP base URL from a realtime URL (`ws://h:p/v2/realtime` → `http://h:p`).
pub(crate) fn http_base(realtime_url: &str) -> String {
    let base = realtime_url.trim_end_matches("/v2/realtime");
    if let Some(rest) = base.strip_prefix("ws://") {
        format!("http://{rest}")
    } else if let Some(rest) = base.strip_prefix("wss://") {
        format!("https://{rest}")
    } else {
        base.to_owned()
    }
}

/// The chat service an access token grants (`grants.chat.service_sid`), read without checking
/// the signature: the node checks it.
fn token_service(token: &str) -> Result<String, ClientError> {
    let payload = token
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p.trim_end_matches('=')).ok())
        .and_then(|p| serde_json::from_slice::<Value>(&p).ok())
        .ok_or_else(|| ClientError::Protocol("the token is not a JWT".into()))?;
    payload["grants"]["chat"]["service_sid"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| ClientError::Protocol("the token has no chat grant".into()))
}

async fn answer(response: reqwest::Response) -> Result<MediaResource, ClientError> {
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    if !status.is_success() {
        let error: ErrorBody =
            serde_json::from_value(body).map_err(|e| ClientError::Protocol(e.to_string()))?;
        return Err(ClientError::Server(error));
    }
    serde_json::from_value(body).map_err(|e| ClientError::Protocol(e.to_string()))
}

fn transport(e: reqwest::Error) -> ClientError {
    ClientError::Closed(format!("media request failed: {e}"))
}

impl Client {
    fn media_url(&self, rest: &str) -> Result<String, ClientError> {
        let token = lock(&self.shared.token).clone();
        let service = token_service(&token)?;
        Ok(format!(
            "{}/v1/Services/{service}/Media{rest}",
            self.http_base
        ))
    }

    /// Uploads a file to the service's media store; send it with [`Channel::send_media`].
    pub async fn upload_media(&self, file: MediaFile) -> Result<MediaResource, ClientError> {
        let mut url = reqwest::Url::parse(&self.media_url("")?)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        if let Some(name) = &file.filename {
            url.query_pairs_mut().append_pair("Filename", name);
        }
        let token = lock(&self.shared.token).clone();
        let response = self
            .http
            .post(url)
            .header("X-Twilio-Token", token)
            .header("Content-Type", &file.content_type)
            .body(file.bytes)
            .send()
            .await
            .map_err(transport)?;
        answer(response).await
    }

    /// A media resource, with a fresh temporary content URL.
    pub async fn get_media(&self, sid: &str) -> Result<MediaResource, ClientError> {
        let token = lock(&self.shared.token).clone();
        let response = self
            .http
            .get(self.media_url(&format!("/{sid}"))?)
            .header("X-Twilio-Token", token)
            .send()
            .await
            .map_err(transport)?;
        answer(response).await
    }
}

impl Channel {
    /// Uploads `file` and sends it as a media message; returns its index. Safe to retry like
    /// [`Channel::send_message`]: the upload happens once and the message is stored once.
    pub async fn send_media(
        &self,
        file: MediaFile,
        attributes: Option<Value>,
    ) -> Result<u64, ClientError> {
        let media = self.client().upload_media(file).await?;
        let client_id = format!("{:032x}", rand::random::<u128>());
        self.send_request(Request::SendMessage {
            channel: self.sid().to_owned(),
            body: String::new(),
            attributes,
            client_id: Some(client_id),
            media_sid: Some(media.sid),
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_http_base_of_a_realtime_url() {
        assert_eq!(
            http_base("ws://127.0.0.1:8080/v2/realtime"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            http_base("wss://chat.example/v2/realtime"),
            "https://chat.example"
        );
    }

    #[test]
    fn the_service_of_a_token() {
        let payload = URL_SAFE_NO_PAD.encode(r#"{"grants":{"chat":{"service_sid":"IS1"}}}"#);
        assert_eq!(token_service(&format!("h.{payload}.s")).unwrap(), "IS1");
        assert!(token_service("not a token").is_err());
    }
}
