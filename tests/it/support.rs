//! Fixtures shared by the integration tests.

use confab_testkit::RestClient;

/// The channel's stored messages (up to 1,000), oldest first, as (index, body).
pub async fn history(rest: &RestClient, service: &str, channel: &str) -> Vec<(u64, String)> {
    let r = rest
        .get(&format!(
            "/v2/Services/{service}/Channels/{channel}/Messages?PageSize=1000"
        ))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["index"].as_u64().unwrap(),
                m["body"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A service with one channel; returns (service SID, channel SID).
pub async fn service_with_channel(rest: &RestClient, unique_name: &str) -> (String, String) {
    let service = rest.post("/v2/Services", &[("FriendlyName", "it")]).await;
    assert_eq!(service.status, 201, "{:?}", service.body);
    let service_sid = service.str("sid");
    let channel = rest
        .post(
            &format!("/v2/Services/{service_sid}/Channels"),
            &[("UniqueName", unique_name), ("FriendlyName", "General")],
        )
        .await;
    assert_eq!(channel.status, 201, "{:?}", channel.body);
    (service_sid, channel.str("sid"))
}
