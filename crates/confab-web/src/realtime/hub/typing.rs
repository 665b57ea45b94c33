//! Typing indicators: started or extended by a session here or by another node's signal, ended
//! by the author's message, by leaving the channel or by the tick that expires them.

use std::time::{Duration, Instant};

use bytestring::ByteString;
use confab_domain::{ChannelSid, ServiceSid};
use confab_protocol::realtime as rt;
use serde_json::json;

use super::task::HubTask;

pub(super) struct Typist {
    service: ServiceSid,
    member_sid: String,
    until: Instant,
}

impl HubTask {
    /// `identity` is typing in `channel` (here or on another node): starts or extends its
    /// indicator.
    pub(super) fn typing(
        &mut self,
        service: ServiceSid,
        channel: ChannelSid,
        identity: String,
        member_sid: String,
        timeout: Duration,
    ) {
        let until = Instant::now() + timeout;
        let key = (channel, identity.clone());
        match self.typing.get_mut(&key) {
            Some(typist) => typist.until = until,
            None => {
                self.typing.insert(
                    key,
                    Typist {
                        service,
                        member_sid: member_sid.clone(),
                        until,
                    },
                );
                self.send_typing("typingStarted", service, channel, &identity, &member_sid);
            }
        }
    }

    fn send_typing(
        &mut self,
        name: &str,
        service: ServiceSid,
        channel: ChannelSid,
        identity: &str,
        member_sid: &str,
    ) {
        let frame: ByteString = rt::event(
            name,
            Some(&channel.to_string()),
            None,
            &json!({"identity": identity, "memberSid": member_sid}),
        )
        .into();
        self.offer_channel(channel, &frame, Some(&(service, identity.to_owned())));
    }

    pub(super) fn expire_typing(&mut self) {
        let now = Instant::now();
        let expired: Vec<(ChannelSid, String)> = self
            .typing
            .iter()
            .filter(|(_, t)| t.until <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            self.end_typing(&key);
        }
    }

    pub(super) fn end_typing(&mut self, key: &(ChannelSid, String)) {
        if let Some(typist) = self.typing.remove(key) {
            self.send_typing(
                "typingEnded",
                typist.service,
                key.0,
                &key.1,
                &typist.member_sid,
            );
        }
    }
}
