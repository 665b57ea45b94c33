//! Media use cases: uploading a file to a service, reading its record and its bytes, and the
//! signed temporary URL of its content. Who may read a media is decided here and only here: the
//! account; its uploader; once it is attached, the members of the channel it was posted in.
//! (Attaching it to a message is the channel actor's work, in `confab-cluster`.)

use std::sync::Arc;
use std::time::Duration;

use confab_cluster::RandomSids;
use confab_domain::media::{check_content_type, check_filename, size_limit};
use confab_domain::{Caller, DomainError, Media, MediaSid, Service, ServiceSid, Timestamp};
use confab_media::{Blob, BlobStore, Bytes, UrlSigner};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::allowance::Allowances;
use crate::channels::UserRef;
use crate::{App, AppError, AppResult};

/// How the node keeps and hands out media.
#[derive(Debug, Clone)]
pub struct MediaSettings {
    /// Where the bytes are; `None` when media are off on this node (uploads are refused).
    pub blobs: Option<Arc<dyn BlobStore>>,
    /// Signs temporary content URLs (the same key on every node).
    pub signer: UrlSigner,
    /// The node's bound on one upload, in bytes (a service's `size_limit_mb` is capped by it).
    pub max_upload_bytes: u64,
    /// Content types accepted (`image/*`, `application/pdf`, `*/*`).
    pub allowed_types: Vec<String>,
    /// How long a temporary content URL works.
    pub url_ttl: Duration,
    /// Uploads read at once on this node: with `max_upload_bytes`, a bound on the memory they
    /// hold.
    pub uploads_in_flight: usize,
    /// Uploads one user may make a minute on this node (a burst of as many): a bound on how
    /// fast one user fills the storage.
    pub uploads_per_minute: u32,
}

/// The media settings, the node's upload slots and its users' upload allowances.
#[derive(Debug)]
pub(crate) struct MediaState {
    settings: MediaSettings,
    uploads: Arc<Semaphore>,
    allowances: Allowances,
}

impl MediaState {
    pub(crate) fn new(settings: MediaSettings) -> Self {
        Self {
            uploads: Arc::new(Semaphore::new(settings.uploads_in_flight.max(1))),
            settings,
            allowances: Allowances::default(),
        }
    }

    fn blobs(&self) -> AppResult<&Arc<dyn BlobStore>> {
        self.settings.blobs.as_ref().ok_or_else(|| {
            AppError::unavailable("media are off on this node (media.backend = \"off\")")
        })
    }
}

/// One of the node's upload slots, held while an upload is read and stored.
#[derive(Debug)]
pub struct UploadSlot {
    _permit: OwnedSemaphorePermit,
    /// The largest upload the service takes, in bytes: the transport stops reading past it.
    pub limit: u64,
}

/// A file to store.
#[derive(Debug, Clone)]
pub struct Upload {
    /// Its MIME type.
    pub content_type: String,
    /// Its file name, if it has one.
    pub filename: Option<String>,
    /// Its bytes.
    pub bytes: Bytes,
}

/// The path a media's content is served at, relative to the node's base URL; the temporary
/// URL's signature covers it.
pub fn content_path(service: ServiceSid, media: MediaSid) -> String {
    format!("/v1/Services/{service}/Media/{media}/Content")
}

impl App {
    /// The media settings.
    pub fn media_settings(&self) -> &MediaSettings {
        &self.media.settings
    }

    /// Admits `caller`'s upload to `service` before its bytes are read: a declared content type
    /// must be allowed, the node must have a free upload slot (20429 otherwise), the caller must
    /// belong to the service, and a user must have upload allowance left (20429), which only an
    /// upload admitted on every other count spends.
    pub fn admit_upload(
        &self,
        caller: &Caller,
        service: &Service,
        declared_type: Option<&str>,
    ) -> AppResult<UploadSlot> {
        self.media.blobs()?;
        if let Some(declared) = declared_type {
            check_content_type(declared, &self.media.settings.allowed_types)?;
        }
        let permit = self
            .media
            .uploads
            .clone()
            .try_acquire_owned()
            .map_err(|_| AppError::too_many_requests())?;
        if let Caller::User {
            service: own,
            identity,
        } = caller
        {
            if *own != service.sid {
                return Err(AppError::service_not_found());
            }
            // Last: an upload refused for another reason spends none of the user's allowance.
            let per_minute = self.media.settings.uploads_per_minute;
            if !self
                .media
                .allowances
                .take(service.sid, identity, per_minute)
            {
                return Err(AppError::too_many_requests());
            }
        }
        Ok(UploadSlot {
            _permit: permit,
            limit: size_limit(
                service.media_size_limit_mb,
                self.media.settings.max_upload_bytes,
            ),
        })
    }

    /// Stores an upload for `caller` (the account, or a user of `service`) and answers its
    /// record: the bytes first, then the record, so a record always has its bytes.
    pub async fn upload_media(
        &self,
        caller: &Caller,
        service: &Service,
        slot: &UploadSlot,
        upload: Upload,
    ) -> AppResult<Media> {
        let author = match caller {
            Caller::Account => None,
            Caller::User {
                service: own,
                identity,
            } => {
                if *own != service.sid {
                    return Err(AppError::service_not_found());
                }
                Some(identity.clone())
            }
        };
        let size = upload.bytes.len() as u64;
        if size == 0 {
            return Err(AppError::invalid("The upload is empty"));
        }
        if size > slot.limit {
            return Err(DomainError::MediaTooLarge { limit: slot.limit }.into());
        }
        check_content_type(&upload.content_type, &self.media.settings.allowed_types)?;
        if let Some(name) = &upload.filename {
            check_filename(name)?;
        }
        let now = now();
        let media = Media {
            sid: MediaSid::generate(&mut RandomSids),
            service_sid: service.sid,
            size,
            content_type: upload.content_type,
            filename: upload.filename,
            author,
            channel_sid: None,
            message_sid: None,
            date_created: now,
            date_updated: now,
        };
        let blobs = self.media.blobs()?;
        blobs
            .put(&media.blob_key(), upload.bytes, &media.content_type)
            .await
            .map_err(|e| {
                tracing::error!(media = %media.sid, error = %e, "cannot store an upload");
                AppError::unavailable("media storage is unavailable")
            })?;
        if let Err(e) = self.store.create_media(&media).await {
            let _ = blobs.delete(&media.blob_key()).await;
            return Err(e.into());
        }
        Ok(media)
    }

    /// The media's record, if `caller` may read it (20404 otherwise, as if it did not exist).
    pub async fn media(
        &self,
        caller: &Caller,
        service: ServiceSid,
        sid: MediaSid,
    ) -> AppResult<Media> {
        let media = self
            .store
            .get_media(service, sid)
            .await?
            .ok_or(DomainError::MediaNotFound)?;
        let Caller::User { .. } = caller else {
            return Ok(media);
        };
        let user = UserRef::of(caller)?;
        if user.service != service {
            return Err(DomainError::MediaNotFound.into());
        }
        if media.author.as_deref() == Some(user.identity) {
            return Ok(media);
        }
        let Some(channel) = media.channel_sid else {
            return Err(DomainError::MediaNotFound.into());
        };
        match self.member_channel(user, &channel.to_string()).await {
            Ok(_) => Ok(media),
            Err(e) if e.status == 404 || e.status == 403 => Err(DomainError::MediaNotFound.into()),
            Err(e) => Err(e),
        }
    }

    /// The media's record and bytes (streamed), if `caller` may read it.
    pub async fn media_content(
        &self,
        caller: &Caller,
        service: ServiceSid,
        sid: MediaSid,
    ) -> AppResult<(Media, Blob)> {
        let media = self.media(caller, service, sid).await?;
        let blob = self.media_blob(&media).await?;
        Ok((media, blob))
    }

    /// The media's record and bytes for a temporary URL's holder: `expires` (Unix seconds) and
    /// `signature` must be a signature of this media's content path that has not expired.
    pub async fn media_content_signed(
        &self,
        service: ServiceSid,
        sid: MediaSid,
        expires: i64,
        signature: &str,
    ) -> AppResult<(Media, Blob)> {
        let now_secs = now().millis() / 1000;
        let path = content_path(service, sid);
        if !self
            .media
            .settings
            .signer
            .verify(&path, expires, signature, now_secs)
        {
            return Err(AppError::forbidden(
                "the content URL is not signed or has expired: fetch the media for a new one",
            ));
        }
        let media = self
            .store
            .get_media(service, sid)
            .await?
            .ok_or(DomainError::MediaNotFound)?;
        let blob = self.media_blob(&media).await?;
        Ok((media, blob))
    }

    /// Deletes every media of a service, records and bytes, as the service is deleted. The
    /// records go first: a byte deletion that fails leaves an object no record names (logged).
    pub async fn delete_service_media(&self, service: ServiceSid) -> AppResult<()> {
        let deleted = self.store.delete_service_media(service).await?;
        if let Some(blobs) = &self.media.settings.blobs {
            for media in deleted {
                if let Err(e) = blobs.delete(&media.blob_key()).await {
                    tracing::warn!(media = %media.sid, error = %e, "cannot delete a deleted service's media bytes");
                }
            }
        }
        Ok(())
    }

    /// Deletes up to `limit` uploads never attached to a message and uploaded before `before`
    /// (records, then bytes); answers how many. Safe on every node at once: an attach that comes
    /// first keeps its media, and a media deleted by another node is skipped.
    pub async fn sweep_unattached_media(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> AppResult<usize> {
        let mut swept = 0;
        for media in self.store.unattached_media_before(before, limit).await? {
            let Some(media) = self
                .store
                .delete_unattached_media(media.service_sid, media.sid)
                .await?
            else {
                continue;
            };
            swept += 1;
            if let Some(blobs) = &self.media.settings.blobs {
                if let Err(e) = blobs.delete(&media.blob_key()).await {
                    tracing::warn!(media = %media.sid, error = %e, "cannot delete an expired upload's bytes");
                }
            }
        }
        Ok(swept)
    }

    /// The query string (`Expires=…&Signature=…`) that makes the media's content path a
    /// temporary URL, valid for the configured time from now.
    pub fn temporary_content_query(&self, media: &Media) -> String {
        let ttl = self.media.settings.url_ttl.as_secs().max(1) as i64;
        let expires = now().millis() / 1000 + ttl;
        let signature = self
            .media
            .settings
            .signer
            .sign(&content_path(media.service_sid, media.sid), expires);
        format!("Expires={expires}&Signature={signature}")
    }

    async fn media_blob(&self, media: &Media) -> AppResult<Blob> {
        match self.media.blobs()?.get(&media.blob_key()).await {
            Ok(Some(blob)) => Ok(blob),
            Ok(None) => {
                tracing::error!(media = %media.sid, "a media record has no bytes");
                Err(DomainError::MediaNotFound.into())
            }
            Err(e) => {
                tracing::error!(media = %media.sid, error = %e, "cannot read media bytes");
                Err(AppError::unavailable("media storage is unavailable"))
            }
        }
    }
}

fn now() -> Timestamp {
    confab_cluster::now()
}
