//! The access token parser: any string is a valid grant or a refusal, never a panic; a token
//! this node mints for any identity verifies to that identity.
#![no_main]

use confab_domain::{AccountSid, ApiKeySid, ServiceSid};
use confab_web::token;
use confab_web::Credentials;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let credentials = Credentials {
        account_sid: AccountSid::from_bits(1),
        auth_token: "token".into(),
        api_key_sid: ApiKeySid::from_bits(2),
        api_key_secret: "secret".into(),
    };
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = token::verify(&credentials, text, 24 * 3600);
    if !text.is_empty() {
        let minted = token::mint(&credentials, text, ServiceSid::from_bits(3), 60)
            .expect("minting cannot fail");
        let grant = token::verify(&credentials, &minted, 24 * 3600).expect("a minted token verifies");
        assert_eq!(grant.identity, text);
    }
});
