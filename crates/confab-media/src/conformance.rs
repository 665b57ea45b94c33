//! The [`BlobStore`] contract as checks every backend runs (`blob_conformance_tests!`).

// The checks fail by panicking; that is their job.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use bytes::Bytes;

use crate::{BlobStore, MediaError};

/// Generates one `#[tokio::test]` per check, each on a store from `$make` (an async expression
/// answering `(guard, Arc<dyn BlobStore>)`).
#[macro_export]
macro_rules! blob_conformance_tests {
    ($make:expr) => {
        $crate::blob_conformance_tests!(@tests $make;
            blobs_round_trip_and_replace_whole,
            missing_blobs_are_none_and_delete_quietly,
            keys_cannot_escape_the_store,
            large_binary_blobs_keep_every_byte,
        );
    };
    (@tests $make:expr; $($name:ident,)*) => {$(
        #[tokio::test]
        async fn $name() {
            let (_guard, blobs): (_, ::std::sync::Arc<dyn $crate::BlobStore>) = $make.await;
            $crate::conformance::$name(blobs).await;
        }
    )*};
}

async fn read(blobs: &dyn BlobStore, key: &str) -> Option<Vec<u8>> {
    let blob = blobs.get(key).await.expect("get")?;
    let size = blob.size;
    let bytes = blob.read_all().await.expect("read");
    assert_eq!(
        bytes.len() as u64,
        size,
        "the size announced is the size read"
    );
    Some(bytes)
}

/// A put is read back; a second put replaces the first whole; a delete removes it.
pub async fn blobs_round_trip_and_replace_whole(blobs: Arc<dyn BlobStore>) {
    let key = "IS00000000000000000000000000000001/ME00000000000000000000000000000001";
    blobs
        .put(key, Bytes::from_static(b"first version"), "text/plain")
        .await
        .expect("put");
    assert_eq!(
        read(&*blobs, key).await.as_deref(),
        Some(&b"first version"[..])
    );
    blobs
        .put(key, Bytes::from_static(b"2nd"), "text/plain")
        .await
        .expect("replace");
    assert_eq!(read(&*blobs, key).await.as_deref(), Some(&b"2nd"[..]));
    blobs.delete(key).await.expect("delete");
    assert_eq!(read(&*blobs, key).await, None);
}

/// A key never written reads `None`; deleting it succeeds.
pub async fn missing_blobs_are_none_and_delete_quietly(blobs: Arc<dyn BlobStore>) {
    let key = "IS00000000000000000000000000000002/ME00000000000000000000000000000009";
    assert_eq!(read(&*blobs, key).await, None);
    blobs.delete(key).await.expect("delete of a missing blob");
    blobs.delete(key).await.expect("twice");
}

/// Keys outside the contract are refused before any I/O.
pub async fn keys_cannot_escape_the_store(blobs: Arc<dyn BlobStore>) {
    for key in [
        "../outside",
        "a/../../b",
        "/absolute",
        "",
        "a//b",
        "a/b.c",
        "sp ace",
    ] {
        assert!(
            matches!(
                blobs.put(key, Bytes::from_static(b"x"), "text/plain").await,
                Err(MediaError::InvalidKey(_))
            ),
            "{key:?} was accepted"
        );
        assert!(matches!(
            blobs.get(key).await,
            Err(MediaError::InvalidKey(_))
        ));
        assert!(matches!(
            blobs.delete(key).await,
            Err(MediaError::InvalidKey(_))
        ));
    }
}

/// Every byte value, several MiB, comes back exactly.
pub async fn large_binary_blobs_keep_every_byte(blobs: Arc<dyn BlobStore>) {
    let key = "IS00000000000000000000000000000003/ME00000000000000000000000000000003";
    let bytes: Vec<u8> = (0..3 * 1024 * 1024 + 17)
        .map(|i| (i * 7 % 256) as u8)
        .collect();
    blobs
        .put(key, Bytes::from(bytes.clone()), "application/octet-stream")
        .await
        .expect("put");
    let back = read(&*blobs, key).await.expect("stored");
    assert!(back == bytes, "the bytes differ ({} read)", back.len());
    blobs.delete(key).await.expect("delete");
}
