//! The filesystem backend passes the blob store conformance suite, and keeps its files under
//! its root.

use std::sync::Arc;

use confab_media::{BlobStore, Bytes, FsBlobs};

async fn fs_store() -> (tempfile::TempDir, Arc<dyn BlobStore>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = FsBlobs::open(dir.path().join("media")).expect("open");
    (dir, Arc::new(blobs))
}

confab_media::blob_conformance_tests!(fs_store());

#[tokio::test]
async fn blobs_are_files_under_the_root_and_outlive_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("media");
    let key = "IS00000000000000000000000000000001/ME00000000000000000000000000000001";
    FsBlobs::open(&root)
        .unwrap()
        .put(key, Bytes::from_static(b"kept"), "text/plain")
        .await
        .unwrap();
    assert_eq!(std::fs::read(root.join(key)).unwrap(), b"kept");
    // No temporary file is left beside it.
    let names: Vec<_> = std::fs::read_dir(root.join("IS00000000000000000000000000000001"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    let reopened = FsBlobs::open(&root).unwrap();
    assert_eq!(
        reopened
            .get(key)
            .await
            .unwrap()
            .unwrap()
            .read_all()
            .await
            .unwrap()
            .as_slice(),
        &b"kept"[..]
    );
}
