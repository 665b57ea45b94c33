//! Blobs as files under a directory (the node's `data_dir/media`): one file per key, written to
//! a temporary name, synced, then renamed, so a crash leaves the old object or the new whole.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use futures::StreamExt;
use tokio_util::io::ReaderStream;

use crate::{check_key, Blob, BlobStore, MediaError};

/// The filesystem backend: the embedded default.
#[derive(Debug, Clone)]
pub struct FsBlobs {
    root: PathBuf,
}

impl FsBlobs {
    /// Blobs under `root`, created if missing.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, MediaError> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        Ok(Self { root })
    }

    /// The directory the blobs are under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf, MediaError> {
        check_key(key)?;
        Ok(self.root.join(key))
    }
}

#[async_trait]
impl BlobStore for FsBlobs {
    async fn put(&self, key: &str, bytes: Bytes, _content_type: &str) -> Result<(), MediaError> {
        let path = self.path(key)?;
        let dir = path
            .parent()
            .ok_or_else(|| MediaError::InvalidKey(key.to_owned()))?
            .to_path_buf();
        tokio::fs::create_dir_all(&dir).await?;
        let temporary = dir.join(format!(
            ".{}.{:016x}.part",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("blob"),
            rand::random::<u64>()
        ));
        let written = async {
            let mut file = tokio::fs::File::create(&temporary).await?;
            file.write_all(&bytes).await?;
            file.sync_all().await?;
            drop(file);
            tokio::fs::rename(&temporary, &path).await?;
            // The rename is durable once the directory is synced.
            tokio::fs::File::open(&dir).await?.sync_all().await
        }
        .await;
        if written.is_err() {
            let _ = tokio::fs::remove_file(&temporary).await;
        }
        Ok(written?)
    }

    async fn get(&self, key: &str) -> Result<Option<Blob>, MediaError> {
        let file = match tokio::fs::File::open(self.path(key)?).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let size = file.metadata().await?.len();
        // A replacing put renames a new file into place: this open file keeps the old bytes.
        let bytes = ReaderStream::with_capacity(file, 64 * 1024)
            .map(|chunk| chunk.map_err(MediaError::from))
            .boxed();
        Ok(Some(Blob { size, bytes }))
    }

    async fn delete(&self, key: &str) -> Result<(), MediaError> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
