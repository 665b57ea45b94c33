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
    /// The credentials it accepts.
    pub credentials: TestCredentials,
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
        let credentials = TestCredentials::default();
        let mut child = Command::new(confab_binary()?)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(data_dir)
            .env("CONFAB_ACCOUNT_SID", &credentials.account_sid)
            .env("CONFAB_AUTH_TOKEN", &credentials.auth_token)
            .env("CONFAB_API_KEY_SID", &credentials.api_key_sid)
            .env("CONFAB_API_KEY_SECRET", &credentials.api_key_secret)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| TestkitError::Start("no stdout".into()))?;
        let mut lines = BufReader::new(stdout).lines();
        let base_url = loop {
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
                break rest.split("/v2").next().unwrap_or_default().to_owned();
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Self {
            child,
            base_url,
            credentials,
        })
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
