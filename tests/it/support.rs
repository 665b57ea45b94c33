//! Fixtures shared by the integration tests.

use confab_testkit::RestClient;

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
