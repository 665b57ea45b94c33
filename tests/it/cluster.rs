//! Cluster mode: several nodes on one `redis-server` (each test starts its own, on a free port).
//!
//! The fault tests run the nodes as separate `confab` processes, so that a node can be killed
//! with SIGKILL or paused with SIGSTOP. Every test checks the same promise: each acknowledged
//! message reaches each receiver exactly once, in index order, and the stored history is exactly
//! the acknowledged messages. Waits bound how long a broken test can hang; nothing is timed.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use confab_client::{Channel, Client, ClientError, Events};
use confab_testkit::{NodeArgs, NodeProcess, RedisServer, RestClient, TestCredentials, TestNode};
use serde_json::{json, Value};

use crate::realtime::{next_event, next_event_where};
use crate::support::history;

/// A message as acknowledged to its writer or delivered to a receiver: (index, body).
type Seen = (u64, String);

async fn get_json(url: &str) -> Value {
    reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// The value of an unlabelled metric on a node's admin server (0 when absent).
async fn metric(admin_url: &str, name: &str) -> f64 {
    let text = reqwest::get(format!("{admin_url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("{name} ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Waits until `check` holds, polling; panics with `what` after a minute.
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not happen within a minute");
}

fn cluster_node(redis: &RedisServer, id: &str) -> TestNode {
    TestNode::builder()
        .cluster(&redis.url(), id)
        .start()
        .unwrap()
}

/// A service with reachability on (users see each other online).
async fn create_service(rest: &RestClient) -> String {
    let r = rest
        .post("/v2/Services", &[("FriendlyName", "cluster")])
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let sid = r.str("sid");
    let on = rest
        .post(
            &format!("/v2/Services/{sid}"),
            &[("ReachabilityEnabled", "true")],
        )
        .await;
    assert_eq!(on.status, 200, "{:?}", on.body);
    sid
}

async fn create_channel(rest: &RestClient, service: &str, name: &str) -> String {
    let r = rest
        .post(
            &format!("/v2/Services/{service}/Channels"),
            &[("UniqueName", name), ("FriendlyName", name)],
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.str("sid")
}

/// Connects `identity` to `urls` (its home node first) and joins `channel`.
async fn member(
    urls: &[String],
    credentials: &TestCredentials,
    service: &str,
    identity: &str,
    channel: &str,
) -> (Client, Channel, Events) {
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    let token = credentials.token(identity, service, 3600);
    let (client, mut events) = Client::connect_any(&urls, &token).await.unwrap();
    let mut joined = client.get_channel(channel).await.unwrap();
    joined.join().await.unwrap();
    next_event(&mut events, "channelJoined").await;
    (client, joined, events)
}

/// Collects `messageAdded` events until `total` arrived (or nothing came for a minute), then
/// half a second more, so that a late duplicate would be counted too.
async fn receive(mut events: Events, total: usize) -> (Vec<Seen>, Events) {
    let mut seen = Vec::new();
    let mut patience = Duration::from_secs(60);
    loop {
        if seen.len() >= total {
            patience = Duration::from_millis(500);
        }
        match tokio::time::timeout(patience, events.next()).await {
            Ok(Some(e)) if e.name == "messageAdded" => {
                let index = e.data["index"].as_u64().unwrap_or(u64::MAX);
                let body = e.data["body"].as_str().unwrap_or_default().to_owned();
                seen.push((index, body));
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    (seen, events)
}

/// Sends `total` messages one after the other, each retried under its own client id until it
/// is acknowledged; counts acknowledgements in `acked_count`.
async fn write(
    channel: Channel,
    prefix: String,
    total: usize,
    acked_count: Arc<AtomicUsize>,
) -> Vec<Seen> {
    let mut acked = Vec::new();
    for i in 0..total {
        let body = format!("{prefix}-{i}");
        let client_id = format!("{prefix}-id-{i}");
        let mut attempts = 0;
        let index = loop {
            match channel
                .send_message_with_client_id(&body, None, &client_id)
                .await
            {
                Ok(index) => break index,
                Err(
                    e @ (ClientError::Server(_)
                    | ClientError::Disconnected
                    | ClientError::Closed(_)),
                ) => {
                    attempts += 1;
                    assert!(attempts < 300, "message {i} never acknowledged: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("message {i}: {e}"),
            }
        };
        acked.push((index, body));
        acked_count.fetch_add(1, Ordering::SeqCst);
    }
    acked
}

/// Every receiver got exactly the acknowledged messages, once each, in index order; the
/// stored history is exactly the acknowledged messages.
async fn check_delivery(acked: &[Seen], received: &[(String, Vec<Seen>)], history: Vec<Seen>) {
    let indices: Vec<u64> = acked.iter().map(|(i, _)| *i).collect();
    let mut sorted = indices.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(indices, sorted, "acknowledged indices are not increasing");
    for (who, got) in received {
        assert_eq!(
            got.len(),
            acked.len(),
            "{who} received {} messages, {} were acknowledged",
            got.len(),
            acked.len()
        );
        assert_eq!(
            got, acked,
            "{who} did not receive exactly the acknowledged messages in order"
        );
    }
    assert_eq!(
        history, acked,
        "stored history differs from the acknowledged messages"
    );
}

#[tokio::test]
async fn three_nodes_deliver_the_same_messages_in_the_same_order() {
    let redis = RedisServer::start().unwrap();
    let nodes: Vec<TestNode> = ["a", "b", "c"]
        .iter()
        .map(|id| cluster_node(&redis, id))
        .collect();
    let cluster = get_json(&format!("http://{}/cluster", nodes[0].admin_addr)).await;
    assert_eq!(cluster["mode"], "cluster");
    assert_eq!(cluster["node_id"], "a");
    eventually("every node sees three live nodes", || async {
        let mut all = true;
        for node in &nodes {
            let c = get_json(&format!("http://{}/cluster", node.admin_addr)).await;
            all &= c["nodes"] == json!(["a", "b", "c"]);
        }
        all
    })
    .await;

    // REST on any node for any channel.
    let service = create_service(&nodes[0].rest()).await;
    let channel = create_channel(&nodes[1].rest(), &service, "general").await;
    let owner = get_json(&format!(
        "http://{}/cluster/channels/{channel}",
        nodes[2].admin_addr
    ))
    .await;
    let owner_id = owner["owner"].as_str().unwrap().to_owned();
    assert!(["a", "b", "c"].contains(&owner_id.as_str()), "{owner}");
    assert!(owner["epoch"].as_u64().unwrap() >= 1);

    let credentials = nodes[0].credentials.clone();
    let mut members = Vec::new();
    for (i, identity) in ["alice", "bob", "carol"].iter().enumerate() {
        let urls = vec![nodes[i].base_url()];
        members.push(member(&urls, &credentials, &service, identity, &channel).await);
    }
    // Realtime writers on every node and a REST writer on each node, all at once.
    const EACH: usize = 15;
    let total = EACH * 6;
    let mut receivers = Vec::new();
    let mut writers = Vec::new();
    let mut clients = Vec::new();
    for (i, (client, joined, events)) in members.into_iter().enumerate() {
        receivers.push(tokio::spawn(receive(events, total)));
        let count = Arc::new(AtomicUsize::new(0));
        writers.push(tokio::spawn(write(joined, format!("rt{i}"), EACH, count)));
        clients.push(client);
    }
    let mut rest_writers = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let rest = node.rest();
        let path = format!("/v2/Services/{service}/Channels/{channel}/Messages");
        rest_writers.push(tokio::spawn(async move {
            for k in 0..EACH {
                let body = format!("rest{i}-{k}");
                let r = rest
                    .post(&path, &[("Body", &body), ("From", "system")])
                    .await;
                assert_eq!(r.status, 201, "{:?}", r.body);
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    for w in rest_writers {
        w.await.unwrap();
    }
    let mut lists = Vec::new();
    let mut streams = Vec::new();
    for r in receivers {
        let (seen, events) = r.await.unwrap();
        lists.push(seen);
        streams.push(events);
    }
    let stored = history(&nodes[2].rest(), &service, &channel).await;
    assert_eq!(stored.len(), total);
    let indices: Vec<u64> = stored.iter().map(|(i, _)| *i).collect();
    assert_eq!(indices, (0..total as u64).collect::<Vec<_>>());
    for (who, got) in ["alice", "bob", "carol"].iter().zip(&lists) {
        assert_eq!(
            got, &stored,
            "{who} saw a different sequence than the history"
        );
    }

    // A channel update through a node that does not own the channel reaches everyone.
    let other = nodes.iter().find(|n| n.node_id != owner_id).unwrap();
    let r = other
        .rest()
        .post(
            &format!("/v2/Services/{service}/Channels/{channel}"),
            &[("FriendlyName", "renamed")],
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    for events in &mut streams {
        next_event_where(events, "channelUpdated", |e| {
            e.data["channel"]["friendlyName"] == "renamed"
        })
        .await;
    }
    // Nothing above should have cost a Redis error or a reconnect (which would make every
    // session resume, hidden from the checks above by the resume itself).
    for node in &nodes {
        let admin = format!("http://{}", node.admin_addr);
        let errors = metric(&admin, "confab_redis_errors_total").await;
        assert_eq!(errors, 0.0, "node {} saw Redis errors", node.node_id);
        assert_eq!(
            metric(&admin, "confab_slow_consumer_closes_total").await,
            0.0
        );
    }
    drop(clients);
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test]
async fn a_user_joined_elsewhere_learns_of_the_channel_on_its_own_node() {
    let redis = RedisServer::start().unwrap();
    let a = cluster_node(&redis, "a");
    let b = cluster_node(&redis, "b");
    let service = create_service(&a.rest()).await;
    let channel = create_channel(&a.rest(), &service, "room").await;
    // Dave is connected to b and follows no channel; a REST call on a adds him.
    let token = b.token("dave", &service, 3600);
    let (_dave, mut events) = Client::connect(&b.ws_url(), &token).await.unwrap();
    let r = a
        .rest()
        .post(
            &format!("/v2/Services/{service}/Channels/{channel}/Members"),
            &[("Identity", "dave")],
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    next_event(&mut events, "channelJoined").await;
    // ... and from then on he receives the channel's messages.
    let r = a
        .rest()
        .post(
            &format!("/v2/Services/{service}/Channels/{channel}/Messages"),
            &[("Body", "welcome")],
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let added = next_event(&mut events, "messageAdded").await;
    assert_eq!(added.data["body"], "welcome");
    a.stop().await;
    b.stop().await;
}

/// Two cluster nodes, with alice on `a` and bob on `b`, both members of one channel.
struct TwoNodes {
    _redis: RedisServer,
    a: TestNode,
    b: TestNode,
    alice: (Client, Channel, Events),
    bob: (Client, Channel, Events),
}

impl TwoNodes {
    async fn start() -> Self {
        let redis = RedisServer::start().unwrap();
        let a = cluster_node(&redis, "a");
        let b = cluster_node(&redis, "b");
        let service = create_service(&a.rest()).await;
        let channel = create_channel(&a.rest(), &service, "pair").await;
        let credentials = a.credentials.clone();
        let alice = member(&[a.base_url()], &credentials, &service, "alice", &channel).await;
        let bob = member(&[b.base_url()], &credentials, &service, "bob", &channel).await;
        Self {
            _redis: redis,
            a,
            b,
            alice,
            bob,
        }
    }

    async fn stop(self) {
        self.a.stop().await;
        self.b.stop().await;
    }
}

#[tokio::test]
async fn typing_reaches_members_on_other_nodes() {
    let mut pair = TwoNodes::start().await;
    let alices = &pair.alice.1;
    let bob_events = &mut pair.bob.2;
    alices.typing().await.unwrap();
    let started = next_event(bob_events, "typingStarted").await;
    assert_eq!(started.data["identity"], "alice");
    // The indicator ends on bob's node too (the service's timeout), or with alice's message.
    alices.send_message("done typing").await.unwrap();
    let ended = next_event(bob_events, "typingEnded").await;
    assert_eq!(ended.data["identity"], "alice");
    pair.stop().await;
}

#[tokio::test]
async fn online_status_crosses_nodes() {
    let mut pair = TwoNodes::start().await;
    let alice = pair.alice.0.clone();
    let bob = pair.bob.0.clone();
    let bob_events = &mut pair.bob.2;
    eventually("bob seeing alice online on the other node", || async {
        bob.get_user("alice").await.unwrap().online == Some(true)
    })
    .await;
    alice.shutdown();
    let offline = next_event_where(bob_events, "userUpdated", |e| {
        e.data["user"]["identity"] == "alice" && e.data["user"]["online"] == false
    })
    .await;
    assert_eq!(offline.data["updateReasons"], json!(["online"]));
    assert_eq!(bob.get_user("alice").await.unwrap().online, Some(false));
    pair.stop().await;
}

/// Three `confab` processes on one Redis.
fn processes(
    redis: &RedisServer,
    dirs: &[tempfile::TempDir],
    args: impl Fn(&str, &str) -> NodeArgs,
) -> Vec<NodeProcess> {
    ["n0", "n1", "n2"]
        .iter()
        .zip(dirs)
        .map(|(id, dir)| NodeProcess::spawn_with(dir.path(), &args(&redis.url(), id)).unwrap())
        .collect()
}

/// Three `confab` processes on one Redis, a service and one channel created through the first.
pub(crate) struct Processes {
    pub(crate) redis: RedisServer,
    pub(crate) dirs: Vec<tempfile::TempDir>,
    pub(crate) nodes: Vec<NodeProcess>,
    pub(crate) urls: Vec<String>,
    pub(crate) service: String,
    pub(crate) channel: String,
}

impl Processes {
    /// With the short timings of the tests (`NodeArgs::cluster`).
    async fn start(channel_name: &str) -> Self {
        Self::start_with(channel_name, NodeArgs::cluster).await
    }

    /// With each node's arguments from `args(redis URL, node id)`.
    pub(crate) async fn start_with(
        channel_name: &str,
        args: impl Fn(&str, &str) -> NodeArgs,
    ) -> Self {
        let redis = RedisServer::start().unwrap();
        let dirs = tempdirs(3);
        let nodes = processes(&redis, &dirs, args);
        let urls = nodes.iter().map(|n| n.base_url.clone()).collect();
        let rest = nodes[0].rest();
        let service = create_service(&rest).await;
        let channel = create_channel(&rest, &service, channel_name).await;
        Self {
            redis,
            dirs,
            nodes,
            urls,
            service,
            channel,
        }
    }
}

pub(crate) async fn owner_of(admin_url: &str, channel: &str) -> (Option<String>, Option<u64>) {
    let v = get_json(&format!("{admin_url}/cluster/channels/{channel}")).await;
    (v["owner"].as_str().map(str::to_owned), v["epoch"].as_u64())
}

async fn live_nodes(admin_url: &str) -> Vec<String> {
    let v = get_json(&format!("{admin_url}/cluster")).await;
    v["nodes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn tempdirs(n: usize) -> Vec<tempfile::TempDir> {
    (0..n).map(|_| tempfile::tempdir().unwrap()).collect()
}

/// A receiving task: what it got, and its event stream for more.
type Receiver = tokio::task::JoinHandle<(Vec<Seen>, Events)>;

/// Receivers on every node (each with the other nodes as fallbacks) and one writer.
pub(crate) struct Load {
    receivers: Vec<(String, Receiver)>,
    writer: tokio::task::JoinHandle<Vec<Seen>>,
    pub(crate) acked: Arc<AtomicUsize>,
    _clients: Vec<Client>,
}

async fn start_load(
    urls: &[String],
    credentials: &TestCredentials,
    service: &str,
    channel: &str,
    writer_node: usize,
    total: usize,
) -> Load {
    let mut receivers = Vec::new();
    let mut clients = Vec::new();
    for home in 0..urls.len() {
        let mut order: Vec<String> = urls[home..].to_vec();
        order.extend_from_slice(&urls[..home]);
        let identity = format!("reader{home}");
        let (client, _joined, events) =
            member(&order, credentials, service, &identity, channel).await;
        receivers.push((identity, tokio::spawn(receive(events, total))));
        clients.push(client);
    }
    let mut order: Vec<String> = urls[writer_node..].to_vec();
    order.extend_from_slice(&urls[..writer_node]);
    let (client, joined, _events) = member(&order, credentials, service, "writer", channel).await;
    clients.push(client);
    let acked = Arc::new(AtomicUsize::new(0));
    let writer = tokio::spawn(write(joined, "m".to_owned(), total, acked.clone()));
    Load {
        receivers,
        writer,
        acked,
        _clients: clients,
    }
}

/// The channel's owner (its index among `nodes`), the index of a node beside it, and a load
/// whose writer sits on that node (receivers sit on every node).
pub(crate) async fn load_beside_owner(
    nodes: &[NodeProcess],
    urls: &[String],
    service: &str,
    channel: &str,
    total: usize,
) -> (usize, usize, Load) {
    let (owner, _) = owner_of(&nodes[0].admin_url, channel).await;
    let owner = owner.expect("the channel has an owner after its creation");
    let victim = ["n0", "n1", "n2"].iter().position(|n| *n == owner).unwrap();
    let writer_node = (victim + 1) % 3;
    let load = start_load(
        urls,
        &nodes[0].credentials,
        service,
        channel,
        writer_node,
        total,
    )
    .await;
    (victim, writer_node, load)
}

pub(crate) async fn wait_acked(acked: &AtomicUsize, at_least: usize) {
    eventually("the writer getting acknowledgements", || async move {
        acked.load(Ordering::SeqCst) >= at_least
    })
    .await;
}

impl Load {
    pub(crate) async fn finish(self, rest: &RestClient, service: &str, channel: &str) {
        let acked = self.writer.await.unwrap();
        let mut received = Vec::new();
        for (who, r) in self.receivers {
            received.push((who, r.await.unwrap().0));
        }
        let stored = history(rest, service, channel).await;
        check_delivery(&acked, &received, stored).await;
    }
}

#[tokio::test]
async fn killing_the_owner_loses_no_acknowledged_message() {
    // Every field bound: a field left to `..` would be dropped here (Redis with it).
    let Processes {
        redis: _redis,
        dirs: _dirs,
        mut nodes,
        urls,
        service,
        channel,
    } = Processes::start("failover").await;
    let (owner, epoch) = owner_of(&nodes[0].admin_url, &channel).await;
    let (victim, writer_node, load) =
        load_beside_owner(&nodes, &urls, &service, &channel, 120).await;
    let owner = owner.unwrap();
    wait_acked(&load.acked, 30).await;
    nodes[victim].kill9().unwrap();
    let survivor = &nodes[writer_node].admin_url;
    eventually("another node taking the channel over", || async {
        let (now, e) = owner_of(survivor, &channel).await;
        now.is_some_and(|n| n != owner) && e > epoch
    })
    .await;
    let rest = nodes[writer_node].rest();
    load.finish(&rest, &service, &channel).await;
}

#[tokio::test]
async fn a_paused_owner_is_fenced_and_gives_the_channel_up() {
    let Processes {
        redis: _redis,
        dirs: _dirs,
        nodes,
        service,
        channel,
        urls: _,
    } = Processes::start("paused").await;
    let rest = nodes[0].rest();
    let messages = format!("/v2/Services/{service}/Channels/{channel}/Messages");
    let (owner, epoch) = owner_of(&nodes[0].admin_url, &channel).await;
    let owner = owner.unwrap();
    let paused = ["n0", "n1", "n2"].iter().position(|n| *n == owner).unwrap();
    let other = (paused + 1) % 3;
    // The owner has the channel loaded when it is paused.
    let r = nodes[paused]
        .rest()
        .post(&messages, &[("Body", "before")])
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);

    nodes[paused].signal("STOP").unwrap();
    // Past its lease and its heartbeat (1 s each), a write through another node makes a
    // live node take the channel with a greater epoch.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let r = nodes[other]
        .rest()
        .post(&messages, &[("Body", "during")])
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let (new_owner, new_epoch) = owner_of(&nodes[other].admin_url, &channel).await;
    assert_ne!(new_owner.as_deref(), Some(owner.as_str()));
    assert!(new_epoch > epoch);

    nodes[paused].signal("CONT").unwrap();
    // The paused node still holds the channel's state: its write is fenced, it gives the
    // channel up and the write goes to the new owner.
    let r = nodes[paused]
        .rest()
        .post(&messages, &[("Body", "after")])
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let (still, _) = owner_of(&nodes[paused].admin_url, &channel).await;
    assert_ne!(
        still.as_deref(),
        Some(owner.as_str()),
        "the paused node took the channel back"
    );
    let losses = metric(&nodes[paused].admin_url, "confab_lease_losses_total").await;
    assert!(
        losses >= 1.0,
        "the paused node did not record losing its lease"
    );

    let stored = history(&rest, &service, &channel).await;
    let bodies: Vec<&str> = stored.iter().map(|(_, b)| b.as_str()).collect();
    assert_eq!(bodies, ["before", "during", "after"]);
    let indices: Vec<u64> = stored.iter().map(|(i, _)| *i).collect();
    assert_eq!(indices, [0, 1, 2]);
}

#[tokio::test]
async fn a_redis_restart_mid_stream_loses_nothing_acknowledged() {
    let mut redis = RedisServer::start().unwrap();
    let nodes: Vec<TestNode> = ["a", "b", "c"]
        .iter()
        .map(|id| cluster_node(&redis, id))
        .collect();
    let urls: Vec<String> = nodes.iter().map(TestNode::base_url).collect();
    let rest = nodes[0].rest();
    let service = create_service(&rest).await;
    let channel = create_channel(&rest, &service, "blip").await;
    // The stream ends soon after the restart: its last messages must arrive without a later
    // message revealing a gap.
    let load = start_load(&urls, &nodes[0].credentials, &service, &channel, 1, 40).await;
    wait_acked(&load.acked, 30).await;
    redis.kill9();
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.restart().unwrap();
    load.finish(&rest, &service, &channel).await;
    let mut errors = 0.0;
    for node in &nodes {
        errors += metric(
            &format!("http://{}", node.admin_addr),
            "confab_redis_errors_total",
        )
        .await;
    }
    assert!(errors > 0.0, "no node noticed that Redis went away");
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test]
async fn users_of_a_dead_node_go_offline_for_their_peers() {
    let Processes {
        redis: _redis,
        dirs: _dirs,
        mut nodes,
        urls: _,
        service,
        channel,
    } = Processes::start("presence").await;
    let credentials = nodes[0].credentials.clone();
    let (bob, _, mut bob_events) = member(
        &[nodes[1].base_url.clone()],
        &credentials,
        &service,
        "bob",
        &channel,
    )
    .await;
    // Alice is a member before she connects, so her node announces her online to the channel.
    let r = nodes[0]
        .rest()
        .post(
            &format!("/v2/Services/{service}/Channels/{channel}/Members"),
            &[("Identity", "alice")],
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let token = credentials.token("alice", &service, 3600);
    let (_alice, _) = Client::connect(&nodes[0].base_url, &token).await.unwrap();
    next_event_where(&mut bob_events, "userUpdated", |e| {
        e.data["user"]["identity"] == "alice" && e.data["user"]["online"] == true
    })
    .await;
    // Her node dies: nothing announces her departure, but bob's node notices the death.
    nodes[0].kill9().unwrap();
    next_event_where(&mut bob_events, "userUpdated", |e| {
        e.data["user"]["identity"] == "alice" && e.data["user"]["online"] == false
    })
    .await;
    assert_eq!(bob.get_user("alice").await.unwrap().online, Some(false));
}

#[tokio::test]
async fn a_rolling_restart_under_load_loses_nothing() {
    let Processes {
        redis,
        dirs,
        mut nodes,
        urls,
        service,
        channel,
    } = Processes::start("rolling").await;
    let load = start_load(&urls, &nodes[0].credentials, &service, &channel, 0, 150).await;
    let ids = ["n0", "n1", "n2"];
    for i in 0..3 {
        wait_acked(&load.acked, 20 + 40 * i).await;
        let status = nodes[i].terminate().unwrap();
        assert!(
            status.success(),
            "node {i} did not exit cleanly on SIGTERM: {status}"
        );
        let mut args = NodeArgs::cluster(&redis.url(), ids[i]);
        args.listen = Some(nodes[i].listen_addr());
        nodes[i] = NodeProcess::spawn_with(dirs[i].path(), &args).unwrap();
        let admin = nodes[i].admin_url.clone();
        eventually("the restarted node rejoining", || {
            let admin = admin.clone();
            async move { live_nodes(&admin).await.len() == 3 }
        })
        .await;
    }
    let rest = nodes[2].rest();
    load.finish(&rest, &service, &channel).await;
    let all: HashSet<String> = ids.iter().map(|s| s.to_string()).collect();
    for node in &nodes {
        let admin = node.admin_url.clone();
        let all = all.clone();
        eventually("every node seeing the three restarted nodes", || {
            let admin = admin.clone();
            let all = all.clone();
            async move { live_nodes(&admin).await.into_iter().collect::<HashSet<_>>() == all }
        })
        .await;
    }
}

#[tokio::test]
async fn a_demotion_through_one_node_reaches_sessions_on_another_within_a_second() {
    use crate::authorization::{created_sid, error_code, post_ok, role_sid, POLICY_PROPAGATION};
    use confab_client::Request;

    let redis = RedisServer::start().unwrap();
    let a = cluster_node(&redis, "a");
    let b = cluster_node(&redis, "b");
    let rest = a.rest();
    let service = create_service(&rest).await;
    let admin = role_sid(&rest, &service, "service admin").await;
    let user = role_sid(&rest, &service, "service user").await;
    let boss = created_sid(
        &rest,
        &format!("/v2/Services/{service}/Users"),
        &[("Identity", "boss"), ("RoleSid", &admin)],
    )
    .await;
    // The session is on b; the demotion goes through a.
    let (session, _events) = Client::connect(&b.ws_url(), &b.token("boss", &service, 3600))
        .await
        .unwrap();
    let first = create_channel(&rest, &service, "first").await;
    assert_eq!(
        error_code(&session, Request::DeleteChannel { channel: first }).await,
        None
    );
    post_ok(
        &rest,
        &format!("/v2/Services/{service}/Users/{boss}"),
        &[("RoleSid", &user)],
    )
    .await;
    let second = create_channel(&rest, &service, "second").await;
    tokio::time::sleep(POLICY_PROPAGATION).await;
    assert_eq!(
        error_code(&session, Request::DeleteChannel { channel: second }).await,
        Some(50107)
    );
    a.stop().await;
    b.stop().await;
}
