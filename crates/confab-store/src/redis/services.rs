//! Services, their roles and their users on Redis.

use async_trait::async_trait;
use confab_domain::{ChannelSid, Role, RoleSid, Service, ServiceSid, User, UserSid};
use redis::AsyncCommands;

use super::scripts::{CREATE_SERVICE, CREATE_UNIQUE, DELETE_USER};
use super::{encode, RedisStore};
use crate::error::{Conflict, StoreError};
use crate::traits::*;

// === impl ServiceStore ===

#[async_trait]
impl ServiceStore for RedisStore {
    async fn create_service(&self, service: &Service, roles: &[Role]) -> Result<(), StoreError> {
        let sid = service.sid;
        let script = redis::Script::new(CREATE_SERVICE);
        let mut invocation = script.prepare_invoke();
        invocation
            .arg(self.key(&format!("svc:{sid}")))
            .arg(self.key("svcs"))
            .arg(self.key("seq"))
            .arg(sid.to_string())
            .arg(encode(service)?)
            .arg(self.key(&format!("roles:{sid}")))
            .arg(self.key(&format!("roles-order:{sid}")));
        for role in roles {
            invocation.arg(role.sid.to_string()).arg(encode(role)?);
        }
        let outcome: String = invocation.invoke_async(&mut self.conn()).await?;
        match outcome.as_str() {
            "OK" => Ok(()),
            _ => Err(StoreError::Conflict(Conflict::Sid)),
        }
    }

    async fn get_service(&self, sid: ServiceSid) -> Result<Option<Service>, StoreError> {
        self.get_json(&self.key(&format!("svc:{sid}"))).await
    }

    async fn list_services(&self, page: &PageRequest) -> Result<Page<Service>, StoreError> {
        let (ids, next) = self.page_ids(&self.key("svcs"), page).await?;
        let mut items = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(s) = self.get_json(&self.key(&format!("svc:{id}"))).await? {
                items.push(s);
            }
        }
        Ok(Page { items, next })
    }

    async fn update_service(&self, service: &Service) -> Result<(), StoreError> {
        let key = self.key(&format!("svc:{}", service.sid));
        let updated: bool = redis::cmd("SET")
            .arg(&key)
            .arg(encode(service)?)
            .arg("XX")
            .query_async::<Option<String>>(&mut self.conn())
            .await?
            .is_some();
        if updated {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    async fn delete_service(&self, sid: ServiceSid) -> Result<bool, StoreError> {
        let existed: bool = self.conn().exists(self.key(&format!("svc:{sid}"))).await?;
        // Channels are deleted through their actors first; what remains here is the indexes.
        let channels: Vec<String> = self
            .conn()
            .zrange(self.key(&format!("channels:{sid}")), 0, -1)
            .await?;
        for ch in channels {
            if let Ok(ch) = ch.parse::<ChannelSid>() {
                self.delete_channel_keys(ch, sid).await?;
            }
        }
        let mut keys = vec![
            self.key(&format!("roles:{sid}")),
            self.key(&format!("roles-order:{sid}")),
            self.key(&format!("users:{sid}")),
            self.key(&format!("user-ids:{sid}")),
            self.key(&format!("users-order:{sid}")),
            self.key(&format!("channels:{sid}")),
            self.key(&format!("channels:{sid}:public")),
            self.key(&format!("channels:{sid}:private")),
            self.key(&format!("uniq:{sid}")),
        ];
        keys.extend(
            self.scan_prefix(&self.key(&format!("memberships:{sid}:")))
                .await?,
        );
        keys.extend(
            self.scan_prefix(&self.key(&format!("user-invites:{sid}:")))
                .await?,
        );
        let _: () = self.conn().del(keys).await?;
        // The record goes last: if anything above failed, the service is still there and the
        // delete can be retried.
        let _: () = self.conn().zrem(self.key("svcs"), sid.to_string()).await?;
        let _: () = self.conn().del(self.key(&format!("svc:{sid}"))).await?;
        Ok(existed)
    }
}

// === impl RoleStore ===

#[async_trait]
impl RoleStore for RedisStore {
    async fn create_role(&self, role: &Role) -> Result<(), StoreError> {
        let records = self.key(&format!("roles:{}", role.service_sid));
        let created: bool = self
            .conn()
            .hset_nx(&records, role.sid.to_string(), encode(role)?)
            .await?;
        if !created {
            return Err(StoreError::Conflict(Conflict::Sid));
        }
        let seq = self.next_seq().await?;
        let _: () = self
            .conn()
            .zadd(
                self.key(&format!("roles-order:{}", role.service_sid)),
                role.sid.to_string(),
                seq,
            )
            .await?;
        Ok(())
    }

    async fn get_role(
        &self,
        service: ServiceSid,
        sid: RoleSid,
    ) -> Result<Option<Role>, StoreError> {
        self.hget_json(&self.key(&format!("roles:{service}")), &sid.to_string())
            .await
    }

    async fn list_roles(
        &self,
        service: ServiceSid,
        page: &PageRequest,
    ) -> Result<Page<Role>, StoreError> {
        self.page_hash(
            &self.key(&format!("roles-order:{service}")),
            &self.key(&format!("roles:{service}")),
            page,
        )
        .await
    }

    async fn update_role(&self, role: &Role) -> Result<(), StoreError> {
        let records = self.key(&format!("roles:{}", role.service_sid));
        self.update_existing(&records, &role.sid.to_string(), encode(role)?)
            .await
    }

    async fn delete_role(&self, service: ServiceSid, sid: RoleSid) -> Result<bool, StoreError> {
        let removed: i64 = self
            .conn()
            .hdel(self.key(&format!("roles:{service}")), sid.to_string())
            .await?;
        let _: () = self
            .conn()
            .zrem(self.key(&format!("roles-order:{service}")), sid.to_string())
            .await?;
        Ok(removed > 0)
    }
}

// === impl UserStore ===

#[async_trait]
impl UserStore for RedisStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        let service = user.service_sid;
        let outcome: String = redis::Script::new(CREATE_UNIQUE)
            .arg(self.key(&format!("user-ids:{service}")))
            .arg(self.key(&format!("users:{service}")))
            .arg(self.key(&format!("users-order:{service}")))
            .arg(self.key("seq"))
            .arg(&user.identity)
            .arg(user.sid.to_string())
            .arg(encode(user)?)
            .invoke_async(&mut self.conn())
            .await?;
        match outcome.as_str() {
            "OK" => Ok(()),
            _ => Err(StoreError::Conflict(Conflict::UserIdentity)),
        }
    }

    async fn get_user(
        &self,
        service: ServiceSid,
        sid: UserSid,
    ) -> Result<Option<User>, StoreError> {
        self.hget_json(&self.key(&format!("users:{service}")), &sid.to_string())
            .await
    }

    async fn get_user_by_identity(
        &self,
        service: ServiceSid,
        identity: &str,
    ) -> Result<Option<User>, StoreError> {
        let sid: Option<String> = self
            .conn()
            .hget(self.key(&format!("user-ids:{service}")), identity)
            .await?;
        match sid {
            Some(sid) => {
                self.hget_json(&self.key(&format!("users:{service}")), &sid)
                    .await
            }
            None => Ok(None),
        }
    }

    async fn list_users(
        &self,
        service: ServiceSid,
        page: &PageRequest,
    ) -> Result<Page<User>, StoreError> {
        self.page_hash(
            &self.key(&format!("users-order:{service}")),
            &self.key(&format!("users:{service}")),
            page,
        )
        .await
    }

    async fn count_users(&self, service: ServiceSid) -> Result<u64, StoreError> {
        let count: u64 = redis::cmd("HLEN")
            .arg(self.key(&format!("users:{service}")))
            .query_async(&mut self.conn())
            .await?;
        Ok(count)
    }

    async fn update_user(&self, user: &User) -> Result<(), StoreError> {
        let records = self.key(&format!("users:{}", user.service_sid));
        self.update_existing(&records, &user.sid.to_string(), encode(user)?)
            .await
    }

    async fn delete_user(&self, service: ServiceSid, sid: UserSid) -> Result<bool, StoreError> {
        let deleted: i64 = redis::Script::new(DELETE_USER)
            .arg(self.key(&format!("users:{service}")))
            .arg(self.key(&format!("user-ids:{service}")))
            .arg(self.key(&format!("users-order:{service}")))
            .arg(sid.to_string())
            .invoke_async(&mut self.conn())
            .await?;
        Ok(deleted == 1)
    }
}
