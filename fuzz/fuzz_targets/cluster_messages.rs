//! The decoders of what nodes send each other over Redis (forwarded commands and their
//! replies, event batches, typing and user signals): any payload decodes or is dropped, never
//! a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = confab_cluster::cluster::decodes(data);
});
