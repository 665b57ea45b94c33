//! Integration tests: real nodes driven through the REST API. One module per area.

// Test helpers fail the test by panicking; that is their job.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod authorization;
mod bad_input;
mod cluster;
mod concurrency;
mod durability;
mod failover;
mod hardening;
mod harness;
mod media;
mod metrics;
mod realtime;
mod realtime_abuse;
mod redis_store;
mod rest;
mod support;
mod twilsock;
mod webhooks;
