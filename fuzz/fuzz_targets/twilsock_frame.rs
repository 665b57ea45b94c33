//! The twilsock frame decoder: any bytes a client sends are a frame or a refusal, never a panic,
//! and a decoded frame encodes to bytes that decode to the same frame.
#![no_main]

use confab_protocol::twilsock::Frame;
use libfuzzer_sys::fuzz_target;

const MAX: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = Frame::decode(data, MAX) {
        let again = Frame::decode(&frame.encode(), MAX + 64).expect("an encoded frame decodes");
        assert_eq!(again.payload, frame.payload);
        assert_eq!(again.method(), frame.method());
        assert_eq!(again.id(), frame.id());
    }
});
