//! The REST form decoder: any body parses, and every typed read of every key it holds answers
//! a value or an error, never a panic.
#![no_main]

use confab_domain::{ChannelSid, RoleSid, UserSid};
use confab_web::form::Form;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let form = Form::parse(data);
    let mut keys: Vec<String> = form.keys().map(str::to_owned).collect();
    keys.extend(["Body", "PageSize", "DateCreated", "RoleSid"].map(String::from));
    for key in &keys {
        let _ = form.string(key);
        let _ = form.all(key);
        let _ = form.u64(key);
        let _ = form.u32(key);
        let _ = form.bool(key);
        let _ = form.timestamp(key);
        let _ = form.sid::<ChannelSid>(key);
        let _ = form.sid::<RoleSid>(key);
        let _ = form.sid::<UserSid>(key);
    }
});
