//! `SqliteStore` against the conformance suite, each check on a fresh database file.

// Test code fails by panicking; that is its job.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use confab_store::{SqliteOptions, SqliteStore, Store};

async fn fresh() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        SqliteStore::open(dir.path().join("confab.db"), SqliteOptions::default()).expect("open");
    (dir, Arc::new(store))
}

confab_store::store_conformance_tests!(fresh());
