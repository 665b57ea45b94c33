//! The configuration parser: any TOML document is a configuration or an error, and the
//! environment overlay keeps a parsed configuration parseable.
#![no_main]

use confab_server::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(mut config) = Config::parse(text) {
        config
            .apply_env(|_| None)
            .expect("an unchanged configuration overlays");
    }
});
