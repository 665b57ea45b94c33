//! Blobs in S3-compatible object storage (AWS S3, MinIO, Ceph, R2, ...), one object per key in
//! one bucket, through the `object_store` crate: what a cluster uses, since every node must
//! serve every media.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{Attribute, Attributes, ObjectStore, PutOptions, PutPayload};

use futures::StreamExt;

use crate::{check_key, Blob, BlobStore, MediaError};

/// Where the bucket is and how to reach it (the `[media.s3]` table of a node's configuration).
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Options {
    /// The bucket.
    pub bucket: String,
    /// The endpoint URL (`https://s3.eu-west-1.amazonaws.com`, `http://minio:9000`); empty for
    /// AWS's endpoint of `region`.
    pub endpoint: String,
    /// The region (`us-east-1` when empty).
    pub region: String,
    /// The access key id; empty to take the environment's (`AWS_ACCESS_KEY_ID`, instance role).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// Object keys start with this (`confab/` puts every blob under a folder); may be empty.
    pub prefix: String,
    /// Paths as `endpoint/bucket/key` instead of `bucket.endpoint/key` (MinIO and most servers
    /// that are not AWS need it).
    pub path_style: bool,
}

impl std::fmt::Debug for S3Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret stays out of logs.
        f.debug_struct("S3Options")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("prefix", &self.prefix)
            .field("path_style", &self.path_style)
            .finish_non_exhaustive()
    }
}

/// The S3 backend.
#[derive(Debug, Clone)]
pub struct S3Blobs {
    store: Arc<dyn ObjectStore>,
    prefix: String,
}

impl S3Blobs {
    /// A client of the bucket (no request is made until the first operation).
    pub fn new(options: &S3Options) -> Result<Self, MediaError> {
        if options.bucket.is_empty() {
            return Err(MediaError::Config("media.s3.bucket is empty".into()));
        }
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&options.bucket)
            .with_region(if options.region.is_empty() {
                "us-east-1"
            } else {
                &options.region
            })
            .with_virtual_hosted_style_request(!options.path_style);
        if !options.endpoint.is_empty() {
            builder = builder
                .with_endpoint(&options.endpoint)
                .with_allow_http(options.endpoint.starts_with("http://"));
        }
        if !options.access_key_id.is_empty() {
            builder = builder
                .with_access_key_id(&options.access_key_id)
                .with_secret_access_key(&options.secret_access_key);
        }
        let store = builder
            .build()
            .map_err(|e| MediaError::Config(e.to_string()))?;
        let prefix = options.prefix.trim_matches('/').to_owned();
        if !prefix.is_empty() {
            check_key(&prefix).map_err(|_| {
                MediaError::Config(format!("media.s3.prefix {prefix:?} is not a key prefix"))
            })?;
        }
        Ok(Self {
            store: Arc::new(store),
            prefix,
        })
    }

    fn path(&self, key: &str) -> Result<Path, MediaError> {
        check_key(key)?;
        Ok(if self.prefix.is_empty() {
            Path::from(key)
        } else {
            Path::from(format!("{}/{key}", self.prefix))
        })
    }
}

#[async_trait]
impl BlobStore for S3Blobs {
    async fn put(&self, key: &str, bytes: Bytes, content_type: &str) -> Result<(), MediaError> {
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, content_type.to_owned().into());
        let options = PutOptions {
            attributes,
            ..PutOptions::default()
        };
        self.store
            .put_opts(&self.path(key)?, PutPayload::from(bytes), options)
            .await?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Blob>, MediaError> {
        match self.store.get(&self.path(key)?).await {
            Ok(result) => {
                let size = result.meta.size;
                let bytes = result
                    .into_stream()
                    .map(|chunk| chunk.map_err(MediaError::from))
                    .boxed();
                Ok(Some(Blob { size, bytes }))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), MediaError> {
        match self.store.delete(&self.path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
