//! The realtime request decoder: any frame a client sends is sorted (request, refusal or close)
//! without panicking, and a request the server decodes encodes back to the same request.
#![no_main]

use confab_protocol::realtime::RequestFrame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let sorted = confab_web::realtime::sort_frame(text);
    if let Ok(frame) = serde_json::from_str::<RequestFrame>(text) {
        assert_eq!(sorted, "request");
        let encoded = frame.request.clone().frame(frame.id);
        let again: RequestFrame =
            serde_json::from_str(&encoded).expect("an encoded request decodes");
        assert_eq!(again, frame);
    }
});
