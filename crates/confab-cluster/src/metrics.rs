//! The channel runtime's metrics, registered into the registry it is handed.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Metrics of channel actors.
#[derive(Debug, Clone)]
pub struct RuntimeMetrics {
    /// `confab_channel_actors`: channel actors alive on this node.
    pub channel_actors: IntGauge,
    /// `confab_messages_received_total`: messages committed by this node's channel actors.
    pub messages_received: IntCounter,
    /// `confab_channel_commands_total{outcome}`: commands executed (`ok`), refused by the rules
    /// (`refused`) or failed in the store or runtime (`failed`).
    pub commands: IntCounterVec,
}

impl RuntimeMetrics {
    /// Creates the metrics and registers them into `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let channel_actors = IntGauge::new(
            "confab_channel_actors",
            "Channel actors alive on this node.",
        )?;
        let messages_received = IntCounter::new(
            "confab_messages_received_total",
            "Messages committed by this node's channel actors.",
        )?;
        let commands = IntCounterVec::new(
            Opts::new(
                "confab_channel_commands_total",
                "Channel commands by outcome: ok, refused, failed.",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(channel_actors.clone()))?;
        registry.register(Box::new(messages_received.clone()))?;
        registry.register(Box::new(commands.clone()))?;
        Ok(Self {
            channel_actors,
            messages_received,
            commands,
        })
    }
}
