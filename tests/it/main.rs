//! Integration tests: real nodes driven through the REST API. One module per area.

mod bad_input;
mod concurrency;
mod durability;
mod rest;
mod support;
