//! Many writers at once to one channel.

use std::collections::BTreeSet;

use confab_testkit::TestNode;

use crate::support::service_with_channel;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_writers_get_unique_gap_free_increasing_indices() {
    const WRITERS: usize = 50;
    const PER_WRITER: usize = 8;
    let node = TestNode::start().unwrap();
    let rest = node.rest();
    let (service, channel) = service_with_channel(&rest, "busy").await;
    let path = format!("/v2/Services/{service}/Channels/{channel}/Messages");
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let rest = rest.clone();
            let path = path.clone();
            tokio::spawn(async move {
                let mut indices = Vec::new();
                for i in 0..PER_WRITER {
                    let r = rest
                        .post(
                            &path,
                            &[
                                ("Body", &format!("w{w} m{i}")),
                                ("From", &format!("writer{w}")),
                            ],
                        )
                        .await;
                    assert_eq!(r.status, 201, "{:?}", r.body);
                    indices.push(r.body["index"].as_u64().unwrap());
                }
                indices
            })
        })
        .collect();
    let mut all = BTreeSet::new();
    for writer in writers {
        let indices = writer.await.unwrap();
        assert!(
            indices.windows(2).all(|w| w[0] < w[1]),
            "one writer's messages must get increasing indices: {indices:?}"
        );
        for index in indices {
            assert!(all.insert(index), "index {index} handed out twice");
        }
    }
    let expected: BTreeSet<u64> = (0..(WRITERS * PER_WRITER) as u64).collect();
    assert_eq!(all, expected, "indices must be gap-free from 0");
    let fetched = rest
        .get(&format!("/v2/Services/{service}/Channels/{channel}"))
        .await;
    assert_eq!(
        fetched.body["messages_count"],
        (WRITERS * PER_WRITER) as u64
    );
    node.stop().await;
}
