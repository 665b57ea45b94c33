//! An S3-protocol server of the test's own: `s3s-fs` (crates.io: the `s3s` project's
//! file-system-backed S3 server), on a free loopback port, with its data in a temporary
//! directory and one bucket. `S3S_FS` names the binary when it is not on `PATH`.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::TestkitError;

/// The access key every test server accepts.
pub const S3_ACCESS_KEY: &str = "confab-test-access";
/// Its secret.
pub const S3_SECRET_KEY: &str = "confab-test-secret-key";

/// A running S3 server with one bucket, killed when dropped.
#[derive(Debug)]
pub struct S3Server {
    child: Option<Child>,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    /// The bucket it holds.
    pub bucket: String,
    dir: tempfile::TempDir,
}

impl S3Server {
    /// Starts a server with an empty bucket named `bucket` and waits until it accepts
    /// connections.
    pub fn start(bucket: &str) -> Result<Self, TestkitError> {
        let dir = tempfile::tempdir()?;
        // s3s-fs keeps a bucket as a directory under its root.
        std::fs::create_dir_all(dir.path().join(bucket))?;
        let mut last = None;
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            match Self::spawn(port, &dir.path().to_path_buf()) {
                Ok(child) => {
                    return Ok(Self {
                        child: Some(child),
                        port,
                        bucket: bucket.to_owned(),
                        dir,
                    })
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| TestkitError::Start("s3s-fs did not start".into())))
    }

    fn spawn(port: u16, root: &PathBuf) -> Result<Child, TestkitError> {
        let binary = std::env::var("S3S_FS").unwrap_or_else(|_| "s3s-fs".into());
        let mut child = Command::new(&binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY])
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                TestkitError::Start(format!(
                    "cannot run {binary} (install it: cargo install s3s-fs --features binary): {e}"
                ))
            })?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(child);
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(TestkitError::Start(format!("s3s-fs exited: {status}")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        Err(TestkitError::Start("s3s-fs did not listen".into()))
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The directory the server keeps its buckets in.
    pub fn root(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
