//! Presence: users going online and offline (here, on other nodes, on nodes that left the
//! cluster), profile updates (`userUpdated`) and the user signals exchanged with other nodes
//! through the presence service. This is the one place of the presence policy.

use std::collections::HashSet;

use bytestring::ByteString;
use confab_cluster::UserSignal;
use confab_domain::ChannelSid;
use confab_protocol::realtime::{self as rt, UserView};
use serde_json::json;

use super::task::HubTask;
use super::{Command, SessionId, UserKey, OFFLINE_GRACE};

/// A user online on another node, as its announcement described them.
pub(super) struct RemoteUser {
    pub(super) node: String,
    pub(super) channels: Vec<ChannelSid>,
    pub(super) user: serde_json::Value,
}

impl HubTask {
    pub(super) fn send_user_updated(&mut self, key: &UserKey, user: &UserView, reasons: &[&str]) {
        let frame = user_frame(user, reasons);
        let mut peers: HashSet<SessionId> = HashSet::new();
        let mut channels: HashSet<ChannelSid> = HashSet::new();
        if let Some(ids) = self.by_user.get(key) {
            for id in ids {
                peers.insert(*id);
                if let Some(entry) = self.sessions.get(id) {
                    for channel in &entry.channels {
                        channels.insert(*channel);
                        if let Some(subs) = self.subscribers.get(channel) {
                            peers.extend(subs.iter().copied());
                        }
                    }
                }
            }
        }
        let online = (reasons == ["online"]).then_some(user.online).flatten();
        self.signal_user(key, user, &frame, channels.into_iter().collect(), online);
        self.offer_to(peers, &frame);
    }

    /// Tells the other nodes about a user's change (their peers of the user see it).
    fn signal_user(
        &self,
        key: &UserKey,
        user: &UserView,
        frame: &ByteString,
        channels: Vec<ChannelSid>,
        online: Option<bool>,
    ) {
        if let Some(presence) = &self.presence {
            presence.signal_user(&UserSignal {
                service: key.0,
                identity: key.1.clone(),
                frame: frame.to_string(),
                online,
                channels,
                user: serde_json::to_value(user).unwrap_or_default(),
                node: String::new(),
            });
        }
    }

    /// A user changed on another node: its sessions here and the members of its channels here
    /// are told.
    pub(super) fn user_signal(&mut self, signal: &UserSignal) {
        let key = (signal.service, signal.identity.clone());
        if signal.online == Some(false) && self.by_user.contains_key(&key) {
            // Another node saw the user's last session there end while one began here:
            // the user is online, and says so again (to every node).
            if let Some(user) = self.users.get(&key).cloned() {
                self.send_user_updated(&key, &user, &["online"]);
            }
            return;
        }
        match signal.online {
            Some(true) => {
                self.remote_online.insert(
                    key.clone(),
                    RemoteUser {
                        node: signal.node.clone(),
                        channels: signal.channels.clone(),
                        user: signal.user.clone(),
                    },
                );
            }
            Some(false) => {
                self.remote_online.remove(&key);
            }
            None => {}
        }
        let mut peers: HashSet<SessionId> = HashSet::new();
        if let Some(ids) = self.by_user.get(&(signal.service, signal.identity.clone())) {
            peers.extend(ids.iter().copied());
        }
        for channel in &signal.channels {
            if let Some(subs) = self.subscribers.get(channel) {
                peers.extend(subs.iter().copied());
            }
        }
        let frame = ByteString::from(signal.frame.clone());
        self.offer_to(peers, &frame);
    }

    /// The user's last session (on every node) ended.
    pub(super) fn announce_offline(
        &mut self,
        key: UserKey,
        user: UserView,
        channels: Vec<ChannelSid>,
    ) {
        if self.by_user.contains_key(&key) {
            // A session of the user arrived here meanwhile: still online.
            return;
        }
        let frame = user_frame(&user, &["online"]);
        for channel in &channels {
            self.offer_channel(*channel, &frame, None);
        }
        self.signal_user(&key, &user, &frame, channels, Some(false));
    }

    /// Nodes left the cluster: users they announced online are checked (after the offline
    /// grace, so that their clients may reconnect elsewhere first).
    pub(super) fn departed(&mut self, nodes: &[String]) {
        let (Some(presence), Some(commands)) = (self.presence.clone(), self.commands.clone())
        else {
            return;
        };
        for (key, remote) in &self.remote_online {
            if !nodes.contains(&remote.node) {
                continue;
            }
            let key = key.clone();
            let node = remote.node.clone();
            let presence = presence.clone();
            let commands = commands.clone();
            tokio::spawn(async move {
                tokio::time::sleep(OFFLINE_GRACE).await;
                let elsewhere = match presence.online_elsewhere(key.0, &key.1) {
                    Some(check) => check.await,
                    None => false,
                };
                if !elsewhere {
                    if let Some(commands) = commands.upgrade() {
                        let _ = commands.send(Command::RemoteOffline { key, node });
                    }
                }
            });
        }
    }

    /// A user announced by a node that died is on no node: tell the local peers (every node
    /// does the same for its own).
    pub(super) fn remote_offline(&mut self, key: &UserKey, node: &str) {
        if self.by_user.contains_key(key) {
            return;
        }
        // Announced again since (by a live node): still online.
        let Some(remote) = self.remote_online.get(key).filter(|r| r.node == node) else {
            return;
        };
        let Ok(mut user) = serde_json::from_value::<UserView>(remote.user.clone()) else {
            self.remote_online.remove(key);
            return;
        };
        user.online = Some(false);
        let frame = user_frame(&user, &["online"]);
        let channels = remote.channels.clone();
        self.remote_online.remove(key);
        let mut peers = HashSet::new();
        for channel in &channels {
            if let Some(subs) = self.subscribers.get(channel) {
                peers.extend(subs.iter().copied());
            }
        }
        self.offer_to(peers, &frame);
    }
}

fn user_frame(user: &UserView, reasons: &[&str]) -> ByteString {
    rt::event(
        "userUpdated",
        None,
        None,
        &json!({"user": user, "updateReasons": reasons}),
    )
    .into()
}
