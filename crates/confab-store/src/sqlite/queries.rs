//! The store traits on SQLite but the channels' (`channels.rs`): services, roles, users,
//! credentials and webhooks, SQL for each method, run through the writer or the reader pool.

use async_trait::async_trait;
use confab_domain::{
    ChannelSid, ChannelWebhook, Credential, CredentialSid, Role, RoleSid, Service, ServiceSid,
    User, UserSid, WebhookSid,
};
use rusqlite::params;

use super::changes::Changed;
use super::channels::delete_channel_rows;
use super::rows::*;
use super::SqliteStore;
use crate::error::{Conflict, StoreError};
use crate::traits::*;

// === impl ServiceStore ===

#[async_trait]
impl ServiceStore for SqliteStore {
    async fn create_service(&self, service: &Service, roles: &[Role]) -> Result<(), StoreError> {
        let data = encode(service)?;
        let sid = service.sid.to_string();
        let roles = roles
            .iter()
            .map(|r| Ok((r.sid.to_string(), encode(r)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.write_changing(Changed::of(&[CachedRecords::Services]), move |conn| {
            execute_cached(
                conn,
                "INSERT INTO services (sid, data) VALUES (?1, ?2)",
                params![sid, data],
            )
            .map_err(|e| {
                if is_unique_violation(&e, "services.sid") {
                    StoreError::Conflict(Conflict::Sid)
                } else {
                    e.into()
                }
            })?;
            for (role_sid, role) in roles {
                execute_cached(
                    conn,
                    "INSERT INTO roles (sid, service_sid, data) VALUES (?1, ?2, ?3)",
                    params![role_sid, sid, role],
                )?;
            }
            Ok(())
        })
        .await
    }

    async fn get_service(&self, sid: ServiceSid) -> Result<Option<Service>, StoreError> {
        self.read(move |conn| {
            get_one(
                conn,
                "SELECT data FROM services WHERE sid = ?1",
                [sid.to_string()],
            )
        })
        .await
    }

    async fn list_services(&self, page: &PageRequest) -> Result<Page<Service>, StoreError> {
        let page = page.clone();
        self.read(move |conn| page_of(conn, "services", "rowid", "1", vec![], &page))
            .await
    }

    async fn update_service(&self, service: &Service) -> Result<(), StoreError> {
        let (sid, data) = (service.sid.to_string(), encode(service)?);
        self.write_changing(Changed::of(&[CachedRecords::Services]), move |conn| {
            match execute_cached(
                conn,
                "UPDATE services SET data = ?2 WHERE sid = ?1",
                params![sid, data],
            )? {
                0 => Err(StoreError::NotFound),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn delete_service(&self, sid: ServiceSid) -> Result<bool, StoreError> {
        let sid = sid.to_string();
        self.write_changing(Changed::of(&CachedRecords::ALL), move |conn| {
            let channels: Vec<String> = conn
                .prepare("SELECT sid FROM channels WHERE service_sid = ?1")?
                .query_map([&sid], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for channel in channels {
                delete_channel_rows(conn, &channel)?;
            }
            execute_cached(conn, "DELETE FROM roles WHERE service_sid = ?1", [&sid])?;
            execute_cached(conn, "DELETE FROM users WHERE service_sid = ?1", [&sid])?;
            Ok(execute_cached(conn, "DELETE FROM services WHERE sid = ?1", [&sid])? > 0)
        })
        .await
    }
}

// === impl RoleStore ===

#[async_trait]
impl RoleStore for SqliteStore {
    async fn create_role(&self, role: &Role) -> Result<(), StoreError> {
        let (sid, service, data) = (
            role.sid.to_string(),
            role.service_sid.to_string(),
            encode(role)?,
        );
        self.write_changing(Changed::of(&[CachedRecords::Services]), move |conn| {
            execute_cached(
                conn,
                "INSERT INTO roles (sid, service_sid, data) VALUES (?1, ?2, ?3)",
                params![sid, service, data],
            )
            .map_err(|e| {
                if is_unique_violation(&e, "roles.sid") {
                    StoreError::Conflict(Conflict::Sid)
                } else {
                    e.into()
                }
            })?;
            Ok(())
        })
        .await
    }

    async fn get_role(
        &self,
        service: ServiceSid,
        sid: RoleSid,
    ) -> Result<Option<Role>, StoreError> {
        self.read(move |conn| {
            get_one(
                conn,
                "SELECT data FROM roles WHERE sid = ?1 AND service_sid = ?2",
                [sid.to_string(), service.to_string()],
            )
        })
        .await
    }

    async fn list_roles(
        &self,
        service: ServiceSid,
        page: &PageRequest,
    ) -> Result<Page<Role>, StoreError> {
        let page = page.clone();
        self.read(move |conn| {
            page_of(
                conn,
                "roles",
                "rowid",
                "service_sid = ?",
                vec![text(service)],
                &page,
            )
        })
        .await
    }

    async fn update_role(&self, role: &Role) -> Result<(), StoreError> {
        let (sid, data) = (role.sid.to_string(), encode(role)?);
        self.write_changing(Changed::of(&[CachedRecords::Services]), move |conn| {
            match execute_cached(
                conn,
                "UPDATE roles SET data = ?2 WHERE sid = ?1",
                params![sid, data],
            )? {
                0 => Err(StoreError::NotFound),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn delete_role(&self, service: ServiceSid, sid: RoleSid) -> Result<bool, StoreError> {
        let (sid, service) = (sid.to_string(), service.to_string());
        self.write_changing(Changed::of(&[CachedRecords::Services]), move |conn| {
            Ok(execute_cached(
                conn,
                "DELETE FROM roles WHERE sid = ?1 AND service_sid = ?2",
                params![sid, service],
            )? > 0)
        })
        .await
    }
}

// === impl UserStore ===

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        let args = (
            user.sid.to_string(),
            user.service_sid.to_string(),
            user.identity.clone(),
            encode(user)?,
        );
        self.write_changing(Changed::of(&[CachedRecords::Users]), move |conn| {
            execute_cached(
                conn,
                "INSERT INTO users (sid, service_sid, identity, data) VALUES (?1, ?2, ?3, ?4)",
                params![args.0, args.1, args.2, args.3],
            )
            .map_err(|e| {
                if is_unique_violation(&e, "users.service_sid, users.identity") {
                    StoreError::Conflict(Conflict::UserIdentity)
                } else if is_unique_violation(&e, "users.sid") {
                    StoreError::Conflict(Conflict::Sid)
                } else {
                    e.into()
                }
            })?;
            Ok(())
        })
        .await
    }

    async fn get_user(
        &self,
        service: ServiceSid,
        sid: UserSid,
    ) -> Result<Option<User>, StoreError> {
        self.read(move |conn| {
            get_one(
                conn,
                "SELECT data FROM users WHERE sid = ?1 AND service_sid = ?2",
                [sid.to_string(), service.to_string()],
            )
        })
        .await
    }

    async fn get_user_by_identity(
        &self,
        service: ServiceSid,
        identity: &str,
    ) -> Result<Option<User>, StoreError> {
        let identity = identity.to_owned();
        self.read(move |conn| {
            get_one(
                conn,
                "SELECT data FROM users WHERE service_sid = ?1 AND identity = ?2",
                [service.to_string(), identity],
            )
        })
        .await
    }

    async fn list_users(
        &self,
        service: ServiceSid,
        page: &PageRequest,
    ) -> Result<Page<User>, StoreError> {
        let page = page.clone();
        self.read(move |conn| {
            page_of(
                conn,
                "users",
                "rowid",
                "service_sid = ?",
                vec![text(service)],
                &page,
            )
        })
        .await
    }

    async fn count_users(&self, service: ServiceSid) -> Result<u64, StoreError> {
        let service = service.to_string();
        self.read(move |conn| {
            let count: i64 = conn
                .prepare_cached("SELECT COUNT(*) FROM users WHERE service_sid = ?1")?
                .query_row([service], |r| r.get(0))?;
            Ok(count.max(0) as u64)
        })
        .await
    }

    async fn update_user(&self, user: &User) -> Result<(), StoreError> {
        let (sid, data) = (user.sid.to_string(), encode(user)?);
        self.write_changing(
            Changed::of(&[CachedRecords::Users]),
            move |conn| match execute_cached(
                conn,
                "UPDATE users SET data = ?2 WHERE sid = ?1",
                params![sid, data],
            )? {
                0 => Err(StoreError::NotFound),
                _ => Ok(()),
            },
        )
        .await
    }

    async fn delete_user(&self, service: ServiceSid, sid: UserSid) -> Result<bool, StoreError> {
        let (sid, service) = (sid.to_string(), service.to_string());
        self.write_changing(Changed::of(&[CachedRecords::Users]), move |conn| {
            Ok(execute_cached(
                conn,
                "DELETE FROM users WHERE sid = ?1 AND service_sid = ?2",
                params![sid, service],
            )? > 0)
        })
        .await
    }
}

// === impl CredentialStore ===

#[async_trait]
impl CredentialStore for SqliteStore {
    async fn put_credential(&self, credential: &Credential) -> Result<(), StoreError> {
        let (sid, data) = (credential.sid.to_string(), encode(credential)?);
        self.write(move |conn| {
            execute_cached(
                conn,
                "INSERT INTO credentials (sid, data) VALUES (?1, ?2)
                 ON CONFLICT (sid) DO UPDATE SET data = excluded.data",
                params![sid, data],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_credential(&self, sid: CredentialSid) -> Result<Option<Credential>, StoreError> {
        self.read(move |conn| {
            get_one(
                conn,
                "SELECT data FROM credentials WHERE sid = ?1",
                [sid.to_string()],
            )
        })
        .await
    }

    async fn list_credentials(&self, page: &PageRequest) -> Result<Page<Credential>, StoreError> {
        let page = page.clone();
        self.read(move |conn| page_of(conn, "credentials", "rowid", "1", vec![], &page))
            .await
    }

    async fn delete_credential(&self, sid: CredentialSid) -> Result<bool, StoreError> {
        let sid = sid.to_string();
        self.write(move |conn| {
            Ok(execute_cached(conn, "DELETE FROM credentials WHERE sid = ?1", [sid])? > 0)
        })
        .await
    }
}

// === impl WebhookStore ===

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn put_webhook(&self, webhook: &ChannelWebhook) -> Result<(), StoreError> {
        let args = (
            webhook.sid.to_string(),
            webhook.channel_sid.to_string(),
            encode(webhook)?,
        );
        self.write_changing(Changed::of(&[CachedRecords::Webhooks]), move |conn| {
            execute_cached(
                conn,
                "INSERT INTO webhooks (sid, channel_sid, data) VALUES (?1, ?2, ?3)
                 ON CONFLICT (sid) DO UPDATE SET data = excluded.data",
                params![args.0, args.1, args.2],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_webhook(
        &self,
        channel: ChannelSid,
        sid: WebhookSid,
    ) -> Result<Option<ChannelWebhook>, StoreError> {
        self.read(move |conn| {
            get_one(
                conn,
                "SELECT data FROM webhooks WHERE sid = ?1 AND channel_sid = ?2",
                [sid.to_string(), channel.to_string()],
            )
        })
        .await
    }

    async fn list_webhooks(
        &self,
        channel: ChannelSid,
        page: &PageRequest,
    ) -> Result<Page<ChannelWebhook>, StoreError> {
        let page = page.clone();
        self.read(move |conn| {
            page_of(
                conn,
                "webhooks",
                "rowid",
                "channel_sid = ?",
                vec![text(channel)],
                &page,
            )
        })
        .await
    }

    async fn delete_webhook(
        &self,
        channel: ChannelSid,
        sid: WebhookSid,
    ) -> Result<bool, StoreError> {
        let (sid, channel) = (sid.to_string(), channel.to_string());
        self.write_changing(Changed::of(&[CachedRecords::Webhooks]), move |conn| {
            Ok(execute_cached(
                conn,
                "DELETE FROM webhooks WHERE sid = ?1 AND channel_sid = ?2",
                params![sid, channel],
            )? > 0)
        })
        .await
    }
}
