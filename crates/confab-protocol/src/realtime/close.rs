//! The close codes of the realtime protocol (`docs/protocol.md`, "Close codes"): what each means
//! and what a client does about it.

/// Why the server closed a realtime connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 1000: a normal close.
    Normal,
    /// 1001: the server is going away (shutdown).
    GoingAway,
    /// 1002: the WebSocket framing was broken.
    ProtocolError,
    /// 1003: the client sent a frame the protocol does not allow (not JSON, not a request,
    /// binary).
    Unsupported,
    /// 1009: a client frame was larger than the server accepts.
    TooBig,
    /// 1011: the server could not go on with the session.
    ServerError,
    /// 4001: the token was refused; reconnecting with the same token is pointless.
    BadToken,
    /// 4002: the token expired; reconnect with a new one.
    TokenExpired,
    /// 4008: no `init` arrived in time.
    InitTimeout,
    /// 4009: the client did not keep up (its outbox filled); reconnect and resume.
    TooSlow,
    /// 4010: the node is draining; reconnect, possibly to another node, and resume.
    Draining,
    /// 4029: too many requests were refused in a row.
    RateLimited,
}

impl CloseCode {
    /// The numeric code on the wire.
    pub fn code(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::ProtocolError => 1002,
            CloseCode::Unsupported => 1003,
            CloseCode::TooBig => 1009,
            CloseCode::ServerError => 1011,
            CloseCode::BadToken => 4001,
            CloseCode::TokenExpired => 4002,
            CloseCode::InitTimeout => 4008,
            CloseCode::TooSlow => 4009,
            CloseCode::Draining => 4010,
            CloseCode::RateLimited => 4029,
        }
    }

    /// The code with this number, if the protocol defines one.
    pub fn from_code(code: u16) -> Option<Self> {
        [
            CloseCode::Normal,
            CloseCode::GoingAway,
            CloseCode::ProtocolError,
            CloseCode::Unsupported,
            CloseCode::TooBig,
            CloseCode::ServerError,
            CloseCode::BadToken,
            CloseCode::TokenExpired,
            CloseCode::InitTimeout,
            CloseCode::TooSlow,
            CloseCode::Draining,
            CloseCode::RateLimited,
        ]
        .into_iter()
        .find(|c| c.code() == code)
    }

    /// Whether a client should reconnect by itself after this close.
    pub fn reconnect(self) -> bool {
        !matches!(
            self,
            CloseCode::BadToken | CloseCode::TokenExpired | CloseCode::Normal
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in [
            1000, 1001, 1002, 1003, 1009, 1011, 4001, 4002, 4008, 4009, 4010, 4029,
        ] {
            assert_eq!(CloseCode::from_code(code).map(CloseCode::code), Some(code));
        }
        assert_eq!(CloseCode::from_code(4999), None);
    }
}
