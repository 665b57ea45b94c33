//! Typed SIDs: two uppercase letters naming the resource kind, then 32 lowercase hex digits.
//!
//! A SID of one kind can never be passed where another is expected, and a string with the wrong
//! prefix is refused at the edge instead of travelling into a lookup that can only miss.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A string that is not a SID of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a valid {prefix} SID")]
pub struct SidParseError {
    /// The prefix that was expected.
    pub prefix: &'static str,
    /// What was given, cut to a printable length.
    pub input: String,
}

/// A source of fresh SIDs. Injected so that the domain stays deterministic under test.
pub trait SidSource {
    /// 128 bits that have never been handed out before (randomness is enough in practice).
    fn next_bits(&mut self) -> u128;
}

/// A `SidSource` that counts up from a seed; for tests and benchmarks.
#[derive(Debug, Clone, Default)]
pub struct CountingSids(pub u128);

impl SidSource for CountingSids {
    fn next_bits(&mut self) -> u128 {
        self.0 += 1;
        self.0
    }
}

/// Parses the 32 hex digits after a two-letter prefix.
fn parse_bits(prefix: &'static str, s: &str) -> Result<u128, SidParseError> {
    let err = || SidParseError {
        prefix,
        input: s.chars().take(64).collect(),
    };
    let hex = s.strip_prefix(prefix).ok_or_else(err)?;
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(err());
    }
    u128::from_str_radix(hex, 16).map_err(|_| err())
}

macro_rules! sid_types {
    ($($(#[$doc:meta])* $name:ident => $prefix:literal;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(u128);

        impl $name {
            /// The two letters every SID of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// A fresh SID from the given source.
            pub fn generate(source: &mut dyn SidSource) -> Self {
                Self(source.next_bits())
            }

            /// The SID whose hex digits are these bits.
            pub const fn from_bits(bits: u128) -> Self {
                Self(bits)
            }

            /// Whether `s` looks like a SID of this kind (prefix and 32 hex digits).
            pub fn is_sid(s: &str) -> bool {
                parse_bits($prefix, s).is_ok()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{:032x}", $prefix, self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = SidParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_bits($prefix, s).map(Self)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = std::borrow::Cow::<str>::deserialize(deserializer)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}

sid_types! {
    /// An account (`AC…`): the tenant that owns services and credentials.
    AccountSid => "AC";
    /// An API key (`SK…`), an alternative credential for the REST API and the key that signs tokens.
    ApiKeySid => "SK";
    /// A chat service (`IS…`), the container of everything else.
    ServiceSid => "IS";
    /// A channel (`CH…`), the unit of ordering.
    ChannelSid => "CH";
    /// A channel membership (`MB…`).
    MemberSid => "MB";
    /// A message (`IM…`).
    MessageSid => "IM";
    /// A user (`US…`).
    UserSid => "US";
    /// A role (`RL…`).
    RoleSid => "RL";
    /// An invitation to a channel (`IN…`).
    InviteSid => "IN";
    /// A push credential (`CR…`).
    CredentialSid => "CR";
    /// A channel webhook (`WH…`).
    WebhookSid => "WH";
    /// A webhook delivery job (`WJ…`): one call of one webhook for one event, kept until it
    /// is delivered or given up. Confab's own; Twilio has no such resource.
    WebhookJobSid => "WJ";
    /// An uploaded media file (`ME…`), attached to at most one message.
    MediaSid => "ME";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        let sid = ChannelSid::from_bits(0xabc);
        let text = sid.to_string();
        assert_eq!(text, "CH00000000000000000000000000000abc");
        assert_eq!(text.parse::<ChannelSid>().unwrap(), sid);
    }

    #[test]
    fn wrong_prefix_is_refused() {
        let text = ChannelSid::from_bits(1).to_string().replacen("CH", "IS", 1);
        assert!(text.parse::<ChannelSid>().is_err());
        assert!(text.parse::<ServiceSid>().is_ok());
    }

    #[test]
    fn wrong_length_and_non_hex_are_refused() {
        assert!("CH123".parse::<ChannelSid>().is_err());
        assert!("CHzz000000000000000000000000000000"
            .parse::<ChannelSid>()
            .is_err());
        assert!("CH+0000000000000000000000000000000"
            .parse::<ChannelSid>()
            .is_err());
        assert!("".parse::<ChannelSid>().is_err());
    }

    #[test]
    fn serde_uses_the_text_form() {
        let sid = MessageSid::from_bits(7);
        let json = serde_json::to_string(&sid).unwrap();
        assert_eq!(json, format!("\"{sid}\""));
        assert_eq!(serde_json::from_str::<MessageSid>(&json).unwrap(), sid);
    }
}
