//! User operations: a user with its online status, and changing one's own info.

use confab_app::users::UserChange;
use confab_app::AppError;
use confab_protocol::realtime::UserView;
use serde_json::Value;

use super::{attributes_text, reply, OpResult};
use crate::realtime::connection::Connection;

impl Connection {
    pub(super) async fn get_user(&self, identity: &str) -> OpResult {
        let auth = self.auth()?;
        let user = self.state.app.user(auth.user(), identity).await?;
        if !self.reachability().await? {
            return reply(UserView::new(&user, None));
        }
        let online = online_anywhere(&self.state, auth.service, &user.identity).await;
        reply(UserView::new(&user, Some(online)))
    }

    /// Whether the service tracks its users' online status now (`ReachabilityEnabled`).
    async fn reachability(&self) -> Result<bool, AppError> {
        let service = self
            .state
            .app
            .policies()
            .service(self.auth()?.service)
            .await?;
        Ok(service.service.reachability_enabled)
    }

    pub(super) async fn update_user(
        &self,
        friendly_name: Option<String>,
        attributes: Option<Value>,
    ) -> OpResult {
        let auth = self.auth()?;
        let change = UserChange {
            friendly_name,
            attributes: attributes_text(attributes),
        };
        let (user, reasons) = self.state.app.update_own_user(&auth.caller, change).await?;
        let view = UserView::new(&user, self.reachability().await?.then_some(true));
        self.state
            .hub
            .user_updated(auth.service, view.clone(), reasons);
        reply(view)
    }
}

/// Whether `identity` has a session: on this node first, then (in cluster mode) on the others.
pub(crate) async fn online_anywhere(
    state: &crate::AppState,
    service: confab_domain::ServiceSid,
    identity: &str,
) -> bool {
    state.hub.is_online(service, identity).await
}
