//! `Policies`: the node's short-lived copies of what authorization decisions read, each
//! service's settings and roles and each user's service role, and of what webhook decisions
//! read besides, each channel's webhooks.
//!
//! Contract: a decision reads values at most `ttl` old (500 ms by default). A change made through
//! this node (`forget_*`, called by the REST layer after it writes) applies to the next decision
//! at once; a change made through another node of a cluster applies within `ttl`. So a demoted
//! user's open sessions lose their rights within a second everywhere, while a command pays a
//! store read only when its entry expired. A store that sees every write of these records (the
//! embedded store: [`ChangeCounts`]) keeps an entry past `ttl` (up to a minute) for as long as
//! no record of its kind was written since it was read: a steady sender is not re-read every
//! `ttl`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use confab_domain::{
    Caller, ChannelSid, ChannelWebhook, RoleSid, Service, ServicePolicy, ServiceSid, UserGrants,
};
use confab_store::{CachedRecords, PageRequest, PageStart, Store};

use crate::error::ChannelError;

/// Entries kept per service (and services kept) before the oldest half is dropped: a bound on
/// the cache's memory, whatever the number of users that act.
const MAX_ENTRIES: usize = 100_000;

/// How long a copy past its TTL is kept while the store counted no write of its kind. The
/// store's count sees only what goes through it: a change made to the database by another
/// program (the `sqlite3` tool, by an operator) still applies within this bound.
const MAX_KEPT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
struct Entry<T> {
    at: Instant,
    /// The store's count of writes of the entry's kind before it was read, when it counts them.
    writes: Option<u64>,
    value: T,
}

#[derive(Debug, Default)]
struct Caches {
    services: HashMap<ServiceSid, Entry<Arc<ServicePolicy>>>,
    /// Per service, per identity: looked up with a borrowed identity, so that a command's
    /// check allocates nothing.
    users: HashMap<ServiceSid, HashMap<String, Entry<Option<RoleSid>>>>,
    /// Per channel, its webhooks (at most five).
    channel_webhooks: HashMap<ChannelSid, Entry<Arc<[ChannelWebhook]>>>,
    /// Bumped by every `forget_*`: a value read from the store before a change was forgotten
    /// is not cached after it (it may be the value the change replaced).
    generation: u64,
}

/// The node's policy cache. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Policies {
    store: Arc<dyn Store>,
    ttl: Duration,
    caches: Arc<Mutex<Caches>>,
}

/// What a caller's decisions need, resolved: `None` for the account.
#[derive(Debug, Clone)]
pub struct ResolvedCaller<'a> {
    identity: &'a str,
    service_role: Option<RoleSid>,
    policy: Arc<ServicePolicy>,
}

impl ResolvedCaller<'_> {
    /// The user's identity.
    pub fn identity(&self) -> &str {
        self.identity
    }

    /// The grants to hand to `confab_domain::policy`.
    pub fn grants(&self) -> UserGrants<'_> {
        UserGrants {
            identity: self.identity,
            service_role: self.service_role,
            policy: &self.policy,
        }
    }

    /// The service's settings and roles as the decision saw them.
    pub fn policy(&self) -> Arc<ServicePolicy> {
        self.policy.clone()
    }
}

impl Policies {
    /// A cache over `store` whose entries live `ttl`.
    pub fn new(store: Arc<dyn Store>, ttl: Duration) -> Self {
        Self {
            store,
            ttl,
            caches: Arc::new(Mutex::new(Caches::default())),
        }
    }

    /// The service's settings and every one of its roles.
    pub async fn service(&self, sid: ServiceSid) -> Result<Arc<ServicePolicy>, ChannelError> {
        let kind = CachedRecords::Services;
        if let Some(hit) = self.cached(kind, |c| c.services.get(&sid).cloned()) {
            return Ok(hit);
        }
        let (generation, writes) = (self.generation(), self.store.changes(kind));
        let service = self
            .store
            .get_service(sid)
            .await?
            .ok_or(ChannelError::ServiceNotFound)?;
        let mut roles = Vec::new();
        let mut page = PageRequest::first(1000);
        loop {
            let got = self.store.list_roles(sid, &page).await?;
            roles.extend(got.items);
            match got.next {
                Some(cursor) => page.start = PageStart::After(cursor),
                None => break,
            }
        }
        let policy = Arc::new(ServicePolicy { service, roles });
        self.insert_since(generation, |c| {
            c.services
                .insert(sid, Entry::read_now(writes, policy.clone()));
            trim(&mut c.services);
        });
        Ok(policy)
    }

    /// The service as stored now (`None`: there is none): the cached copy when the store has
    /// counted no write of services since it was read, which makes it current
    /// ([`confab_store::ChangeCounts`]; within [`MAX_KEPT`] of the read); otherwise read from
    /// the store.
    pub async fn current_service(&self, sid: ServiceSid) -> Result<Option<Service>, ChannelError> {
        let kind = CachedRecords::Services;
        let current = self.caches.lock().ok().and_then(|c| {
            let entry = c.services.get(&sid)?;
            self.unchanged(kind, entry)
                .then(|| entry.value.service.clone())
        });
        match current {
            Some(service) => Ok(Some(service)),
            None => Ok(self.store.get_service(sid).await?),
        }
    }

    /// The service role of the user with this identity (`None`: no such user).
    pub async fn user_role(
        &self,
        service: ServiceSid,
        identity: &str,
    ) -> Result<Option<RoleSid>, ChannelError> {
        let kind = CachedRecords::Users;
        let hit = self.cached(kind, |c| c.users.get(&service)?.get(identity).cloned());
        if let Some(hit) = hit {
            return Ok(hit);
        }
        let (generation, writes) = (self.generation(), self.store.changes(kind));
        let role = self
            .store
            .get_user_by_identity(service, identity)
            .await?
            .map(|u| u.role_sid);
        self.insert_since(generation, |c| {
            let users = c.users.entry(service).or_default();
            users.insert(identity.to_owned(), Entry::read_now(writes, role));
            trim(users);
        });
        Ok(role)
    }

    /// The channel's webhooks.
    pub async fn channel_webhooks(
        &self,
        channel: ChannelSid,
    ) -> Result<Arc<[ChannelWebhook]>, ChannelError> {
        let kind = CachedRecords::Webhooks;
        if let Some(hit) = self.cached(kind, |c| c.channel_webhooks.get(&channel).cloned()) {
            return Ok(hit);
        }
        let (generation, writes) = (self.generation(), self.store.changes(kind));
        // Twilio allows five per channel; a page of 50 reads every one.
        let hooks: Arc<[ChannelWebhook]> = self
            .store
            .list_webhooks(channel, &PageRequest::first(50))
            .await?
            .items
            .into();
        self.insert_since(generation, |c| {
            c.channel_webhooks
                .insert(channel, Entry::read_now(writes, hooks.clone()));
            trim(&mut c.channel_webhooks);
        });
        Ok(hooks)
    }

    /// Drops the channel's webhooks (after a change to them through this node).
    pub fn forget_channel_webhooks(&self, channel: ChannelSid) {
        self.change(|c| {
            c.generation += 1;
            c.channel_webhooks.remove(&channel);
        });
    }

    /// Resolves a caller for decisions: `None` for the account.
    pub async fn resolve<'a>(
        &self,
        caller: &'a Caller,
    ) -> Result<Option<ResolvedCaller<'a>>, ChannelError> {
        let Caller::User { service, identity } = caller else {
            return Ok(None);
        };
        let policy = self.service(*service).await?;
        let service_role = self.user_role(*service, identity).await?;
        Ok(Some(ResolvedCaller {
            identity,
            service_role,
            policy,
        }))
    }

    /// Drops the service's settings and roles (after a change to either through this node).
    pub fn forget_service(&self, sid: ServiceSid) {
        self.change(|c| {
            c.generation += 1;
            c.services.remove(&sid);
        });
    }

    /// Drops the user's service role (after a change to the user through this node).
    pub fn forget_user(&self, service: ServiceSid, identity: &str) {
        self.change(|c| {
            c.generation += 1;
            if let Some(users) = c.users.get_mut(&service) {
                users.remove(identity);
            }
        });
    }

    /// The cached value, if it is younger than the TTL or no record of its kind was written
    /// since it was read.
    fn cached<T>(
        &self,
        kind: CachedRecords,
        get: impl FnOnce(&Caches) -> Option<Entry<T>>,
    ) -> Option<T> {
        let entry = get(&*self.caches.lock().ok()?)?;
        let current = entry.at.elapsed() < self.ttl || self.unchanged(kind, &entry);
        current.then_some(entry.value)
    }

    /// Whether the store has counted no write of `kind` since `entry` was read (and it is
    /// younger than [`MAX_KEPT`]): then it is what the store holds.
    fn unchanged<T>(&self, kind: CachedRecords, entry: &Entry<T>) -> bool {
        entry.at.elapsed() < MAX_KEPT
            && entry.writes.is_some()
            && entry.writes == self.store.changes(kind)
    }

    fn generation(&self) -> u64 {
        self.caches.lock().map(|c| c.generation).unwrap_or(0)
    }

    /// Caches what was read since `generation`, unless something was forgotten meanwhile.
    fn insert_since(&self, generation: u64, insert: impl FnOnce(&mut Caches)) {
        self.change(|c| {
            if c.generation == generation {
                insert(c);
            }
        });
    }

    fn change(&self, change: impl FnOnce(&mut Caches)) {
        if let Ok(mut caches) = self.caches.lock() {
            change(&mut caches);
        }
    }
}

impl<T> Entry<T> {
    /// A value read now, after the store's count of its kind was `writes`.
    fn read_now(writes: Option<u64>, value: T) -> Self {
        Entry {
            at: Instant::now(),
            writes,
            value,
        }
    }
}

/// Keeps a cache within `MAX_ENTRIES`: past it, the entries older than the newest half go.
fn trim<K: Clone + Eq + std::hash::Hash, T>(map: &mut HashMap<K, Entry<T>>) {
    if map.len() <= MAX_ENTRIES {
        return;
    }
    let mut ages: Vec<Instant> = map.values().map(|e| e.at).collect();
    ages.sort_unstable();
    let cutoff = ages[ages.len() / 2];
    map.retain(|_, e| e.at >= cutoff);
}
