//! The channel runtime's metrics, registered into the registry it is handed.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

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
    /// `confab_redis_command_duration_seconds`: Redis calls of the cluster layer (leases,
    /// heartbeats, forwarded commands, publish pipelines).
    pub redis_command_seconds: Histogram,
    /// `confab_redis_errors_total`: failed Redis calls and lost pub/sub connections.
    pub redis_errors: IntCounter,
    /// `confab_ownership_changes_total`: channel leases this node acquired.
    pub ownership_changes: IntCounter,
    /// `confab_lease_losses_total`: leases this node lost (expired or fenced off) while it
    /// still held the channel.
    pub lease_losses: IntCounter,
    /// `confab_owned_channels`: channel leases this node holds.
    pub owned_channels: IntGauge,
    /// `confab_cluster_nodes`: live nodes this node sees (0 on a single node).
    pub cluster_nodes: IntGauge,
    /// `confab_routed_commands_total{outcome}`: commands sent to another node: `ok` (answered),
    /// `retried` (owner moving or unreachable, sent again), `failed` (gave up at the deadline).
    pub routed: IntCounterVec,
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
        let redis_command_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "confab_redis_command_duration_seconds",
                "Redis calls of the cluster layer: leases, heartbeats, forwards, publishes.",
            )
            .buckets(vec![
                0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
        )?;
        let redis_errors = IntCounter::new(
            "confab_redis_errors_total",
            "Failed Redis calls and lost pub/sub connections.",
        )?;
        let ownership_changes = IntCounter::new(
            "confab_ownership_changes_total",
            "Channel leases this node acquired.",
        )?;
        let lease_losses = IntCounter::new(
            "confab_lease_losses_total",
            "Channel leases this node lost (expired or fenced off) while holding the channel.",
        )?;
        let owned_channels =
            IntGauge::new("confab_owned_channels", "Channel leases this node holds.")?;
        let cluster_nodes = IntGauge::new(
            "confab_cluster_nodes",
            "Live cluster nodes this node sees (0 on a single node).",
        )?;
        let routed = IntCounterVec::new(
            Opts::new(
                "confab_routed_commands_total",
                "Channel commands sent to the owning node, by outcome: ok, retried, failed.",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(channel_actors.clone()))?;
        registry.register(Box::new(messages_received.clone()))?;
        registry.register(Box::new(commands.clone()))?;
        registry.register(Box::new(redis_command_seconds.clone()))?;
        registry.register(Box::new(redis_errors.clone()))?;
        registry.register(Box::new(ownership_changes.clone()))?;
        registry.register(Box::new(lease_losses.clone()))?;
        registry.register(Box::new(owned_channels.clone()))?;
        registry.register(Box::new(cluster_nodes.clone()))?;
        registry.register(Box::new(routed.clone()))?;
        for outcome in ["ok", "retried", "failed"] {
            routed.with_label_values(&[outcome]);
        }
        Ok(Self {
            channel_actors,
            messages_received,
            commands,
            redis_command_seconds,
            redis_errors,
            ownership_changes,
            lease_losses,
            owned_channels,
            cluster_nodes,
            routed,
        })
    }
}
