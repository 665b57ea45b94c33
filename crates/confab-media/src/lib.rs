//! `confab-media`: where the bytes of uploaded media live, and the signed temporary URLs that
//! hand them out.
//!
//! It owns the [`BlobStore`] trait with its contract, its two backends ([`FsBlobs`], files under
//! the node's data directory, the embedded default; [`S3Blobs`], S3-compatible object storage for
//! clusters, through the `object_store` crate), the [`conformance`] suite both pass, and
//! [`UrlSigner`]. It knows nothing of services, messages or who may read what: the records of
//! media and their attachment to messages are `confab-store`'s, the authorization
//! `confab-app`'s.

#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
mod fs;
mod s3;
mod signer;

use async_trait::async_trait;
pub use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;

pub use error::MediaError;
pub use fs::FsBlobs;
pub use s3::{S3Blobs, S3Options};
pub use signer::UrlSigner;

/// Bytes stored by key: each key one immutable object (a media's content).
///
/// Contract:
/// - Keys are `/`-separated ASCII words of letters, digits, `-` and `_` (a service SID and a
///   media SID); a backend refuses other keys (`MediaError::InvalidKey`) rather than reach
///   outside its root.
/// - [`BlobStore::put`] returns after the object is durable (on the filesystem: written,
///   synced and renamed into place; on S3: acknowledged by the server) and replaces an object
///   of the same key whole: a reader sees the old bytes or the new, never a part.
/// - [`BlobStore::get`] answers `None` for a key never written or deleted, and otherwise a
///   stream of the object's bytes, read as the stream is polled (a download holds a chunk in
///   memory, not the object).
/// - [`BlobStore::delete`] of a missing key is not an error.
#[async_trait]
pub trait BlobStore: Send + Sync + std::fmt::Debug {
    /// Stores `bytes` under `key`.
    async fn put(&self, key: &str, bytes: Bytes, content_type: &str) -> Result<(), MediaError>;
    /// The bytes under `key`, if any, as a stream.
    async fn get(&self, key: &str) -> Result<Option<Blob>, MediaError>;
    /// Deletes the object under `key`.
    async fn delete(&self, key: &str) -> Result<(), MediaError>;
}

/// An object being read.
pub struct Blob {
    /// Its length in bytes.
    pub size: u64,
    /// Its bytes, in chunks.
    pub bytes: BoxStream<'static, Result<Bytes, MediaError>>,
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blob")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl Blob {
    /// Reads the whole object into memory (for tests and small objects).
    pub async fn read_all(mut self) -> Result<Vec<u8>, MediaError> {
        let mut all = Vec::with_capacity(usize::try_from(self.size).unwrap_or(0));
        while let Some(chunk) = self.bytes.next().await {
            all.extend_from_slice(&chunk?);
        }
        Ok(all)
    }
}

/// Checks a key against the contract of [`BlobStore`].
pub(crate) fn check_key(key: &str) -> Result<(), MediaError> {
    let word_ok = |w: &str| {
        !w.is_empty()
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if key.len() <= 256 && key.split('/').all(word_ok) {
        Ok(())
    } else {
        Err(MediaError::InvalidKey(key.to_owned()))
    }
}
