//! `SqliteStore` against the conformance suite, each check on a fresh database file.

// Test code fails by panicking; that is its job.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use confab_store::{SqliteOptions, SqliteStore, Store};

async fn fresh() -> Arc<dyn Store> {
    // The directory must outlive the store; leaking it keeps the test simple and the OS cleans
    // up temporary directories.
    let dir = tempfile::tempdir().expect("tempdir").keep();
    Arc::new(SqliteStore::open(dir.join("confab.db"), SqliteOptions::default()).expect("open"))
}

confab_store::store_conformance_tests!(fresh());
