//! Cluster endpoints of the admin server: `GET /cluster` (live nodes, this node, the channels it
//! owns) and `GET /cluster/channels/{ChannelSid}` (`{"owner": node_id, "epoch": n}`).

use actix_web::{web, HttpResponse};
use confab_app::AppError;
use confab_cluster::ChannelRuntime;
use confab_domain::ChannelSid;
use serde_json::json;

/// What the cluster endpoints read.
#[derive(Debug, Clone)]
pub(crate) struct ClusterView {
    pub(crate) node_id: String,
    pub(crate) runtime: ChannelRuntime,
}

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/cluster", web::get().to(cluster))
        .route("/cluster/channels/{sid}", web::get().to(channel));
}

async fn cluster(view: web::Data<ClusterView>) -> HttpResponse {
    match view.runtime.cluster() {
        Some(cluster) => HttpResponse::Ok().json(json!({
            "mode": "cluster",
            "node_id": view.node_id,
            "nodes": cluster.live_nodes(),
            "owned_channels": cluster.owned_channels(),
            "draining": cluster.is_draining(),
        })),
        // One node owns every channel it has an actor for.
        None => HttpResponse::Ok().json(json!({
            "mode": "embedded",
            "node_id": view.node_id,
            "nodes": [view.node_id],
            "owned_channels": view.runtime.active_channels(),
            "draining": false,
        })),
    }
}

async fn channel(view: web::Data<ClusterView>, sid: web::Path<String>) -> HttpResponse {
    let Ok(sid) = sid.parse::<ChannelSid>() else {
        return error(AppError::invalid(format!("Invalid channel SID {sid:?}")));
    };
    let Some(cluster) = view.runtime.cluster() else {
        return HttpResponse::Ok().json(json!({"owner": view.node_id, "epoch": 0}));
    };
    match cluster.lease_of(sid).await {
        Ok(Some((owner, epoch))) => {
            HttpResponse::Ok().json(json!({"owner": owner, "epoch": epoch}))
        }
        // Nobody holds it: the next command makes placement's choice take it.
        Ok(None) => HttpResponse::Ok().json(json!({"owner": null, "epoch": null})),
        Err(e) => error(AppError::unavailable(format!("Redis unavailable: {e}"))),
    }
}

/// A Twilio error body with its status.
fn error(e: AppError) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(e.status)
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status).json(json!({
        "code": e.code,
        "message": e.message,
        "status": e.status,
    }))
}
