//! The `confab` binary as a child process, for tests that kill it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::{RestClient, TestCredentials, TestkitError};

/// A `confab serve` child process on port 0. Killed when dropped.
#[derive(Debug)]
pub struct NodeProcess {
    child: Child,
    /// Its REST base URL.
    pub base_url: String,
    /// Its admin base URL (`/cluster`, `/metrics`, ...).
    pub admin_url: String,
    /// The credentials it accepts.
    pub credentials: TestCredentials,
}

/// How to start a [`NodeProcess`] beyond its data directory.
#[derive(Debug, Clone, Default)]
pub struct NodeArgs {
    /// REST address (default `127.0.0.1:0`); a restarted node can take its old address again.
    pub listen: Option<String>,
    /// Cluster mode: the Redis URL.
    pub redis_url: Option<String>,
    /// Cluster mode: the node's id.
    pub node_id: Option<String>,
    /// More environment variables (`CONFAB_*` settings).
    pub env: Vec<(String, String)>,
}

impl NodeArgs {
    /// A cluster node with the short timings tests use: nodes and leases expire after 1 s,
    /// a forwarded command waits 2 s for its reply.
    pub fn cluster(redis_url: &str, node_id: &str) -> Self {
        Self {
            listen: None,
            redis_url: Some(redis_url.to_owned()),
            node_id: Some(node_id.to_owned()),
            env: vec![
                ("CONFAB_CLUSTER_NODE_TTL_MS".into(), "1000".into()),
                ("CONFAB_CLUSTER_LEASE_MS".into(), "1000".into()),
                ("CONFAB_CLUSTER_ROUTE_TIMEOUT_MS".into(), "2000".into()),
                ("CONFAB_SHUTDOWN_TIMEOUT_SECS".into(), "5".into()),
            ],
        }
    }
}

/// The `confab` binary: `CONFAB_BIN`, else beside the running test's target directory.
pub fn confab_binary() -> Result<PathBuf, TestkitError> {
    if let Ok(path) = std::env::var("CONFAB_BIN") {
        return Ok(PathBuf::from(path));
    }
    // Test executables live in target/<profile>/deps/; the binary in target/<profile>/.
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| TestkitError::Start("cannot locate the target directory".into()))?;
    let path = profile_dir.join("confab");
    if path.exists() {
        Ok(path)
    } else {
        Err(TestkitError::Start(format!(
            "{} not found: build it with `cargo build -p confab-server` or set CONFAB_BIN",
            path.display()
        )))
    }
}

impl NodeProcess {
    /// Starts `confab serve` on `data_dir` and waits for it to announce its address.
    pub fn spawn(data_dir: &Path) -> Result<Self, TestkitError> {
        Self::spawn_with(data_dir, &NodeArgs::default())
    }

    /// Starts `confab serve` with `args` and waits for it to announce its address.
    pub fn spawn_with(data_dir: &Path, args: &NodeArgs) -> Result<Self, TestkitError> {
        let credentials = TestCredentials::default();
        let mut command = Command::new(confab_binary()?);
        command
            .args(["serve", "--listen"])
            .arg(args.listen.as_deref().unwrap_or("127.0.0.1:0"))
            .args(["--admin-listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir);
        if let Some(url) = &args.redis_url {
            command.arg("--redis-url").arg(url);
        }
        if let Some(id) = &args.node_id {
            command.arg("--node-id").arg(id);
        }
        command.envs(args.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut child = command
            .env("CONFAB_ACCOUNT_SID", &credentials.account_sid)
            .env("CONFAB_AUTH_TOKEN", &credentials.auth_token)
            .env("CONFAB_API_KEY_SID", &credentials.api_key_sid)
            .env("CONFAB_API_KEY_SECRET", &credentials.api_key_secret)
            .env(
                "RUST_LOG",
                std::env::var("CONFAB_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| TestkitError::Start("no stdout".into()))?;
        let mut lines = BufReader::new(stdout).lines();
        let (base_url, admin_url) = loop {
            let Some(line) = lines.next() else {
                let _ = child.kill();
                return Err(TestkitError::Start("confab exited before serving".into()));
            };
            let line = line?;
            if let Some(rest) = line
                .split(" at ")
                .nth(1)
                .filter(|_| line.starts_with("Confab is serving"))
            {
                let base = rest.split("/v2").next().unwrap_or_default().to_owned();
                let admin = rest
                    .split("(admin: ")
                    .nth(1)
                    .unwrap_or_default()
                    .trim_end_matches(')')
                    .to_owned();
                break (base, admin);
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Self {
            child,
            base_url,
            admin_url,
            credentials,
        })
    }

    /// The REST address (`host:port`), for restarting a node where it was.
    pub fn listen_addr(&self) -> String {
        self.base_url.trim_start_matches("http://").to_owned()
    }

    /// Sends a signal by name (`STOP`, `CONT`, `TERM`, ...).
    pub fn signal(&self, name: &str) -> Result<(), TestkitError> {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(TestkitError::Start(format!("kill -{name} failed")))
        }
    }

    /// A REST client with the account credentials.
    pub fn rest(&self) -> RestClient {
        RestClient::new(
            self.base_url.clone(),
            &self.credentials.account_sid,
            &self.credentials.auth_token,
        )
    }

    /// SIGKILL: the process gets no chance to flush or clean up.
    pub fn kill9(&mut self) -> Result<(), TestkitError> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// SIGTERM, then waits for the process to exit.
    pub fn terminate(&mut self) -> Result<std::process::ExitStatus, TestkitError> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        Ok(self.child.wait()?)
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
