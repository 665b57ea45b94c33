//! The webhook receiver the tests talk to: `tests/python/webhook_receiver.py` as a process (it
//! checks every request with twilio-python's `RequestValidator`), and readers of what it got.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use confab_testkit::TestCredentials;
use serde_json::Value;

/// The receiver process; killed on drop.
pub(super) struct Receiver {
    child: Child,
    pub(super) port: u16,
    pub(super) http: reqwest::Client,
}

impl Receiver {
    /// Starts a receiver validating with the test nodes' auth token, on `port` (0: any).
    pub(super) fn start(port: u16) -> Self {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let python = root.join(".venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: scripts/test.sh makes the suite's Python environment",
            python.display()
        );
        let mut child = Command::new(python)
            .arg(root.join("tests/python/webhook_receiver.py"))
            .args(["--token", &TestCredentials::default().auth_token])
            .args(["--port", &port.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the receiver prints its port");
        Self {
            child,
            port,
            http: reqwest::Client::new(),
        }
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Every webhook request received so far.
    pub(super) async fn requests(&self) -> Vec<Value> {
        let body: Value = self
            .http
            .get(self.url("/_requests"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body.as_array().unwrap().clone()
    }

    /// Waits until `done` holds for the requests received (at most `limit`).
    pub(super) async fn wait_for(
        &self,
        limit: Duration,
        what: &str,
        done: impl Fn(&[Value]) -> bool,
    ) {
        let deadline = Instant::now() + limit;
        loop {
            let got = self.requests().await;
            if done(&got) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; received: {got:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(super) async fn behave(&self, rule: Value) {
        let r = self
            .http
            .post(self.url("/_behaviour"))
            .json(&rule)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    pub(super) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A request's parameters as a map.
pub(super) fn params(request: &Value) -> HashMap<String, String> {
    request["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_owned(),
                p[1].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

pub(super) fn event_types(requests: &[Value]) -> Vec<String> {
    requests
        .iter()
        .map(|r| params(r).get("EventType").cloned().unwrap_or_default())
        .collect()
}

pub(super) fn of_type<'a>(requests: &'a [Value], event: &str) -> Vec<&'a Value> {
    requests
        .iter()
        .filter(|r| params(r).get("EventType").map(String::as_str) == Some(event))
        .collect()
}

/// A port where a receiver will listen, with nothing listening there yet.
pub(super) fn receiver_port_while_down() -> u16 {
    let mut receiver = Receiver::start(0);
    receiver.kill();
    receiver.port
}
