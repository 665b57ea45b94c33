//! The `confab` command: `serve` (the default) runs a node; `version` prints the version.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use confab_server::{Config, LogFormat, Node};

#[derive(Debug, Parser)]
#[command(
    name = "confab",
    version,
    about = "Confab: a self-hosted chat backend with Twilio Programmable Chat's API"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a node (the default).
    Serve(ServeArgs),
    /// Print an access token for the realtime API (signed with the node's API key).
    Token(TokenArgs),
    /// Chat from the terminal: join a channel, print its events, send lines from standard input.
    Chat(ChatArgs),
    /// Print the version.
    Version,
}

/// Where the node's credentials come from (as for `serve`).
#[derive(Debug, Clone, clap::Args)]
struct CredentialArgs {
    /// TOML configuration file.
    #[arg(long, env = "CONFAB_CONFIG")]
    config: Option<PathBuf>,
    /// The node's data directory (holds generated credentials) [default: ./confab-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

impl CredentialArgs {
    fn credentials(&self) -> Result<confab_web::Credentials, confab_server::ServerError> {
        let mut config = Config::load(self.config.as_deref(), |k| std::env::var(k).ok())?;
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        confab_server::credentials::existing(&config, &config.data_dir)
    }
}

#[derive(Debug, Clone, clap::Args)]
struct TokenArgs {
    /// The user's identity.
    #[arg(long)]
    identity: String,
    /// The chat service SID (IS…).
    #[arg(long)]
    service: String,
    /// Seconds the token is valid.
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
    #[command(flatten)]
    credentials: CredentialArgs,
}

#[derive(Debug, Clone, clap::Args)]
struct ChatArgs {
    /// The user's identity.
    #[arg(long)]
    identity: String,
    /// The chat service SID (IS…).
    #[arg(long)]
    service: String,
    /// Channel SID or unique name (created if it does not exist).
    #[arg(long)]
    channel: String,
    /// The node's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    #[command(flatten)]
    credentials: CredentialArgs,
}

fn mint(args: &CredentialArgs, identity: &str, service: &str, ttl: u64) -> Result<String, String> {
    let credentials = args.credentials().map_err(|e| e.to_string())?;
    let service = service
        .parse()
        .map_err(|_| format!("{service:?} is not a service SID (IS + 32 hex digits)"))?;
    confab_web::token::mint(&credentials, identity, service, ttl).map_err(|e| e.to_string())
}

/// Flags of `serve`. Each overrides the TOML file and the environment.
#[derive(Debug, Clone, clap::Args)]
struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "CONFAB_CONFIG")]
    config: Option<PathBuf>,
    /// Address of the REST API [default: 127.0.0.1:8080].
    #[arg(long)]
    listen: Option<String>,
    /// Address of /healthz and /readyz [default: 127.0.0.1:9090].
    #[arg(long)]
    admin_listen: Option<String>,
    /// Directory of the embedded store [default: ./confab-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Base URL used in `url`, `links` and paging URLs [default: http://LISTEN].
    #[arg(long)]
    public_url: Option<String>,
    /// Log format.
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
    /// The development token endpoint of the chat page [default: auto = on for loopback only].
    #[arg(long, value_enum)]
    dev_tokens: Option<confab_server::DevTokens>,
    /// Redis URL (redis://host:port/db): turns cluster mode on.
    #[arg(long)]
    redis_url: Option<String>,
    /// This node's name in the cluster [default: generated].
    #[arg(long)]
    node_id: Option<String>,
}

impl ServeArgs {
    /// Whether no flag was given.
    fn is_empty(&self) -> bool {
        self.config.is_none()
            && self.listen.is_none()
            && self.admin_listen.is_none()
            && self.data_dir.is_none()
            && self.public_url.is_none()
            && self.log_format.is_none()
            && self.dev_tokens.is_none()
            && self.redis_url.is_none()
            && self.node_id.is_none()
    }

    fn config(&self) -> Result<Config, confab_server::ServerError> {
        let mut config = Config::load(self.config.as_deref(), |k| std::env::var(k).ok())?;
        if let Some(v) = &self.listen {
            config.listen = v.clone();
        }
        if let Some(v) = &self.admin_listen {
            config.admin_listen = v.clone();
        }
        if let Some(v) = &self.data_dir {
            config.data_dir = v.clone();
        }
        if let Some(v) = &self.public_url {
            config.public_url = Some(v.clone());
        }
        if let Some(v) = self.log_format {
            config.log_format = v;
        }
        if let Some(v) = self.dev_tokens {
            config.dev_tokens = v;
        }
        if let Some(v) = &self.redis_url {
            config.redis_url = Some(v.clone());
        }
        if let Some(v) = &self.node_id {
            config.node_id = Some(v.clone());
        }
        Ok(config)
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // `confab --listen X serve` would otherwise drop `--listen` silently.
    if cli.command.is_some() && !cli.serve.is_empty() {
        eprintln!("confab: put serve flags after the subcommand (`confab serve --listen ...`) or use no subcommand");
        return std::process::ExitCode::from(2);
    }
    let args = match cli.command {
        Some(Command::Version) => {
            println!("confab {}", env!("CARGO_PKG_VERSION"));
            return std::process::ExitCode::SUCCESS;
        }
        Some(Command::Serve(args)) => args,
        Some(Command::Token(args)) => {
            return match mint(&args.credentials, &args.identity, &args.service, args.ttl) {
                Ok(token) => {
                    println!("{token}");
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("confab: {e}");
                    std::process::ExitCode::from(2)
                }
            };
        }
        Some(Command::Chat(args)) => {
            let token = match mint(&args.credentials, &args.identity, &args.service, 24 * 3600) {
                Ok(token) => token,
                Err(e) => {
                    eprintln!("confab: {e}");
                    return std::process::ExitCode::from(2);
                }
            };
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("confab: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            };
            return match runtime.block_on(confab_server::chat::run(
                &args.url,
                &token,
                &args.channel,
            )) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("confab: {e}");
                    std::process::ExitCode::FAILURE
                }
            };
        }
        None => cli.serve,
    };
    let config = match args.config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("confab: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    init_logging(config.log_format);
    let result = actix_web::rt::System::new().block_on(serve(config));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("confab: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), confab_server::ServerError> {
    let data_dir = config.data_dir.clone();
    let configured = config.clone();
    let node = Node::start(config).await?;
    if node.credentials_generated {
        // Only what was generated: configured secrets never go to the terminal or the logs.
        let c = &node.credentials;
        let mut lines = Vec::new();
        if configured.account_sid.is_none() {
            lines.push(format!("  account SID:    {}", c.account_sid));
        }
        if configured.auth_token.is_none() {
            lines.push(format!("  auth token:     {}", c.auth_token));
        }
        if configured.api_key_sid.is_none() {
            lines.push(format!("  API key SID:    {}", c.api_key_sid));
        }
        if configured.api_key_secret.is_none() {
            lines.push(format!("  API key secret: {}", c.api_key_secret));
        }
        println!(
            "Generated credentials (kept in {}):\n{}",
            data_dir.join("credentials.json").display(),
            lines.join("\n")
        );
    }
    println!(
        "Confab is serving the Twilio Chat v2 REST API at {}/v2 (admin: http://{})",
        node.public_url, node.admin_addr
    );
    let stopper = node.stopper();
    actix_web::rt::spawn(async move {
        wait_for_signal().await;
        tracing::info!("signal received: stopping");
        stopper.stop().await;
    });
    node.wait().await;
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
