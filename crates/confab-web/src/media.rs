//! The media API at Twilio's Media Content Service paths: `POST /v1/Services/{IS}/Media`
//! (upload: the raw bytes with their `Content-Type`, or a `multipart/form-data` form whose first
//! file part is the upload), `GET …/Media/{ME}` (the resource, with a fresh temporary content
//! URL) and `GET …/Media/{ME}/Content` (the bytes). Callers authenticate as the account or an
//! API key (HTTP Basic), or as a user with an access token in `X-Twilio-Token`; the content is
//! also served to a temporary URL's holder (`Expires` and `Signature` in the query). Who may
//! read what is `confab_app::media`'s decision.

use actix_cors::Cors;
use actix_multipart::Multipart;
use actix_web::http::header::{self, ContentDisposition, DispositionParam, DispositionType};
use actix_web::{web, HttpRequest, HttpResponse};
use confab_app::media::Upload;
use confab_app::{AppError, Caller};
use confab_domain::{DomainError, MediaSid};
use confab_media::Bytes;
use confab_protocol::rest as json;
use futures::StreamExt;

use crate::error::ApiError;
use crate::token::{self, TokenError};
use crate::AppState;

/// Registers the media API on an app that has `AppState` as data.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1/Services/{service}/Media")
            .wrap(cors())
            .service(web::resource("").post(upload))
            .service(web::resource("/{media}").get(fetch))
            .service(web::resource("/{media}/Content").get(content)),
    );
}

/// Browser apps call the media API from their own origin, as they call Twilio's media service
/// (twilio-chat uploads and reads media resources with `X-Twilio-Token`): any origin may, and
/// no cookie is ever taken (the token or Basic credentials in the request are the whole
/// authority, so a page of another site can do only what it already holds a credential for).
fn cors() -> Cors {
    Cors::default()
        .allow_any_origin()
        .send_wildcard()
        .allowed_methods(["GET", "POST"])
        .allowed_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::HeaderName::from_static("x-twilio-token"),
        ])
        .expose_headers([header::CONTENT_DISPOSITION, header::CONTENT_LENGTH])
        .max_age(3600)
}

/// The caller of a media request: the account (Basic credentials) or the user of an access
/// token (`X-Twilio-Token`).
fn caller(req: &HttpRequest, state: &AppState) -> Result<Caller, AppError> {
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok());
    if basic.is_some() {
        return if state.credentials.check_header(basic) {
            Ok(Caller::Account)
        } else {
            Err(AppError::unauthenticated())
        };
    }
    let Some(token) = req
        .headers()
        .get("X-Twilio-Token")
        .and_then(|h| h.to_str().ok())
    else {
        return Err(AppError::unauthenticated());
    };
    let max = state.realtime.max_token_lifetime_secs;
    let grant = token::verify(&state.credentials, token, max).map_err(|e| match e {
        TokenError::Expired => AppError::token_expired(),
        TokenError::Invalid(why) => AppError::token_rejected(why),
        TokenError::TooLong { max_secs } => AppError::token_lifetime_too_long(max_secs),
    })?;
    Ok(Caller::User {
        service: grant.service_sid,
        identity: grant.identity,
    })
}

fn media_sid(text: &str) -> Result<MediaSid, AppError> {
    text.parse()
        .map_err(|_| AppError::from(DomainError::MediaNotFound))
}

/// Reads a body of at most `limit` bytes: 50512 (413) past it, without reading the rest.
async fn read_limited(
    mut stream: impl futures::Stream<Item = Result<Bytes, String>> + Unpin,
    limit: u64,
) -> Result<Bytes, AppError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| AppError::invalid(format!("Cannot read the upload: {e}")))?;
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(DomainError::MediaTooLarge { limit }.into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The upload in a `multipart/form-data` body: its first file part (one with a file name), or,
/// in a form without one, its first part.
async fn read_form(
    req: &HttpRequest,
    payload: web::Payload,
    limit: u64,
) -> Result<Upload, AppError> {
    let mut form = Multipart::new(req.headers(), payload);
    let mut first = None;
    while let Some(field) = form.next().await {
        let field = field.map_err(|e| AppError::invalid(format!("Invalid multipart form: {e}")))?;
        let filename = field
            .content_disposition()
            .and_then(|d| d.get_filename())
            .map(str::to_owned);
        let content_type = field
            .content_type()
            .map_or_else(|| "application/octet-stream".to_owned(), |m| m.to_string());
        // Every part counts against the limit: the form as a whole is bounded.
        let bytes = read_limited(field.map(|c| c.map_err(|e| e.to_string())), limit).await?;
        let upload = Upload {
            content_type,
            filename,
            bytes,
        };
        if upload.filename.is_some() {
            return Ok(upload);
        }
        if first.is_none() && !upload.bytes.is_empty() {
            first = Some(upload);
        }
    }
    first.ok_or_else(|| AppError::missing("media"))
}

async fn upload(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let caller = caller(&req, &state)?;
    let service = state.app.load_service(&path).await?;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    // Refused before a byte is read when the declared length is already too much.
    let length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|h| h.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let multipart = content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data");
    if content_type.is_empty() {
        return Err(AppError::missing("Content-Type").into());
    }
    // Who, where and what kind are checked before a byte is read or a slot is taken.
    let declared = (!multipart).then_some(content_type.as_str());
    let slot = state.app.admit_upload(&caller, &service, declared)?;
    if let Some(length) = length.filter(|_| !multipart) {
        if length > slot.limit {
            return Err(AppError::from(DomainError::MediaTooLarge { limit: slot.limit }).into());
        }
    }
    let read = async {
        if multipart {
            read_form(&req, payload, slot.limit).await
        } else {
            let filename = super::rest::query(&req)
                .string("Filename")
                .filter(|f| !f.is_empty());
            let stream = payload.map(|c| c.map_err(|e| e.to_string()));
            Ok(Upload {
                content_type: content_type.clone(),
                filename,
                bytes: read_limited(stream, slot.limit).await?,
            })
        }
    };
    let timeout = state.limits.upload_timeout;
    let upload = tokio::time::timeout(timeout, read).await.map_err(|_| {
        AppError::invalid(format!(
            "The upload did not arrive within {} seconds",
            timeout.as_secs()
        ))
    })??;
    let media = state
        .app
        .upload_media(&caller, &service, &slot, upload)
        .await?;
    let query = state.app.temporary_content_query(&media);
    Ok(HttpResponse::Created().json(json::media(&media, &state.urls, &query)))
}

async fn fetch(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let caller = caller(&req, &state)?;
    let service = state.app.load_service(&path.0).await?;
    let media = state
        .app
        .media(&caller, service.sid, media_sid(&path.1)?)
        .await?;
    let query = state.app.temporary_content_query(&media);
    Ok(HttpResponse::Ok().json(json::media(&media, &state.urls, &query)))
}

async fn content(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let service = state.app.load_service(&path.0).await?;
    let sid = media_sid(&path.1)?;
    let query = super::rest::query(&req);
    let (media, blob) = match (query.get("Expires"), query.get("Signature")) {
        (Some(expires), Some(signature)) => {
            let expires = expires
                .parse()
                .map_err(|_| AppError::invalid("Expires must be a number of seconds"))?;
            state
                .app
                .media_content_signed(service.sid, sid, expires, signature)
                .await?
        }
        _ => {
            let caller = caller(&req, &state)?;
            state.app.media_content(&caller, service.sid, sid).await?
        }
    };
    // Shown inline only when it is an image (a page must not run uploaded HTML or scripts from
    // this origin); everything else downloads.
    let inline = media
        .content_type
        .to_ascii_lowercase()
        .starts_with("image/")
        && !media.content_type.to_ascii_lowercase().contains("svg");
    let mut parameters = Vec::new();
    if let Some(name) = &media.filename {
        parameters.push(DispositionParam::Filename(name.clone()));
    }
    let disposition = ContentDisposition {
        disposition: if inline {
            DispositionType::Inline
        } else {
            DispositionType::Attachment
        },
        parameters,
    };
    let content_type = if inline {
        media.content_type.clone()
    } else {
        "application/octet-stream".to_owned()
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(disposition)
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header((header::CACHE_CONTROL, "private, max-age=300"))
        .no_chunking(blob.size)
        .streaming(blob.bytes))
}
