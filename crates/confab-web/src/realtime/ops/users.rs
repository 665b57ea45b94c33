//! User operations: a user with its online status, and changing one's own info.

use confab_app::users::UserChange;
use confab_protocol::realtime::UserView;
use serde_json::Value;

use super::{attributes_text, reply, OpResult};
use crate::realtime::connection::Connection;

impl Connection {
    pub(super) async fn get_user(&self, identity: &str) -> OpResult {
        let auth = self.auth()?;
        let user = self.state.app.user(auth.user(), identity).await?;
        // This node's sessions first; in cluster mode the other nodes' too.
        let mut online = self.state.hub.is_online(auth.service, &user.identity).await;
        if !online {
            if let Some(cluster) = self.state.runtime.cluster() {
                online = cluster.online_elsewhere(auth.service, &user.identity).await;
            }
        }
        reply(UserView::new(&user, online))
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
        let view = UserView::new(&user, true);
        self.state
            .hub
            .user_updated(auth.service, view.clone(), reasons);
        reply(view)
    }
}
