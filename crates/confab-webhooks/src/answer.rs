//! What a pre-event webhook's `2xx` answer may change: a JSON object whose fields replace the
//! action's (`body` and `attributes` of a message; `friendlyName`, `uniqueName` and
//! `attributes` of a channel; `friendlyName` and `attributes` of a user). Twilio's examples
//! write both camelCase and snake_case names, so both are read. Fields that do not apply to the
//! event are ignored; an answer that is empty or not a JSON object changes nothing.

use confab_domain::{ChannelCommand, CreateChannel};
use serde_json::Value;

/// The changes a pre-event webhook asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreHookChange {
    /// New message body.
    pub body: Option<String>,
    /// New attributes (JSON text).
    pub attributes: Option<String>,
    /// New friendly name.
    pub friendly_name: Option<String>,
    /// New unique name.
    pub unique_name: Option<String>,
}

impl PreHookChange {
    /// Reads an answer body. Anything but a JSON object means "no change".
    pub fn parse(body: &[u8]) -> Self {
        let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
            return Self::default();
        };
        let text = |names: &[&str]| {
            names.iter().find_map(|n| match map.get(*n) {
                Some(Value::String(s)) => Some(s.clone()),
                _ => None,
            })
        };
        // Attributes are JSON text in Twilio's parameters; an object is accepted as well.
        let attributes = ["attributes", "Attributes"]
            .iter()
            .find_map(|n| match map.get(*n) {
                Some(Value::String(s)) => Some(s.clone()),
                Some(v @ (Value::Object(_) | Value::Array(_))) => Some(v.to_string()),
                _ => None,
            });
        Self {
            body: text(&["body", "Body"]),
            attributes,
            friendly_name: text(&["friendlyName", "friendly_name", "FriendlyName"]),
            unique_name: text(&["uniqueName", "unique_name", "UniqueName"]),
        }
    }

    /// Applies the change to a channel command (the domain validates the result as usual).
    pub fn apply(self, command: &mut ChannelCommand) {
        match command {
            ChannelCommand::PostMessage(post) => {
                if let Some(body) = self.body {
                    post.body = body;
                }
                if self.attributes.is_some() {
                    post.attributes = self.attributes;
                }
            }
            ChannelCommand::UpdateMessage(update) => {
                if self.body.is_some() {
                    update.change.body = self.body;
                }
                if self.attributes.is_some() {
                    update.change.attributes = self.attributes;
                }
            }
            ChannelCommand::Update(update) => {
                if self.friendly_name.is_some() {
                    update.friendly_name = self.friendly_name;
                }
                if self.unique_name.is_some() {
                    update.unique_name = self.unique_name;
                }
                if self.attributes.is_some() {
                    update.attributes = self.attributes;
                }
            }
            _ => {}
        }
    }

    /// Applies the change to a channel creation.
    pub fn apply_to_create(self, create: &mut CreateChannel) {
        if self.friendly_name.is_some() {
            create.friendly_name = self.friendly_name;
        }
        if self.unique_name.is_some() {
            create.unique_name = self.unique_name;
        }
        if self.attributes.is_some() {
            create.attributes = self.attributes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_spellings_and_attribute_objects() {
        let change = PreHookChange::parse(
            br#"{"body":"clean","attributes":{"a":1},"friendly_name":"F","uniqueName":"u"}"#,
        );
        assert_eq!(change.body.as_deref(), Some("clean"));
        assert_eq!(change.attributes.as_deref(), Some(r#"{"a":1}"#));
        assert_eq!(change.friendly_name.as_deref(), Some("F"));
        assert_eq!(change.unique_name.as_deref(), Some("u"));
    }

    #[test]
    fn anything_but_an_object_changes_nothing() {
        for body in [&b""[..], b"ok", b"[1]", b"\"x\"", b"{}"] {
            assert_eq!(PreHookChange::parse(body), PreHookChange::default());
        }
    }

    #[test]
    fn a_message_answer_rewrites_the_post() {
        let mut command = ChannelCommand::PostMessage(confab_domain::PostMessage {
            author: Some("alice".into()),
            require_member: true,
            body: "darn".into(),
            attributes: None,
            date_created: None,
            date_updated: None,
            last_updated_by: None,
            client_id: None,
            media: None,
        });
        PreHookChange::parse(br#"{"body":"d**n","friendlyName":"ignored"}"#).apply(&mut command);
        let ChannelCommand::PostMessage(post) = command else {
            unreachable!("still a post")
        };
        assert_eq!(post.body, "d**n");
        assert_eq!(post.attributes, None);
    }
}
