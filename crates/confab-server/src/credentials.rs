//! The node's REST credentials: from configuration, else generated once and kept in the data
//! directory (`credentials.json`, readable only by the owner) so that restarts keep them.

use std::path::Path;

use confab_domain::{AccountSid, ApiKeySid};
use confab_web::Credentials;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::ServerError;

#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    account_sid: String,
    auth_token: String,
    api_key_sid: String,
    api_key_secret: String,
}

fn secret() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The credentials, and whether they were generated just now (to be shown once).
pub fn resolve(config: &Config, data_dir: &Path) -> Result<(Credentials, bool), ServerError> {
    let path = data_dir.join("credentials.json");
    let (stored, generated) = match std::fs::read_to_string(&path) {
        Ok(text) => (
            serde_json::from_str::<Stored>(&text)
                .map_err(|e| ServerError::Config(format!("{}: {e}", path.display())))?,
            false,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let stored = Stored {
                account_sid: AccountSid::from_bits(rand::random()).to_string(),
                auth_token: secret(),
                api_key_sid: ApiKeySid::from_bits(rand::random()).to_string(),
                api_key_secret: secret(),
            };
            // Only needed when some credential is not configured.
            let needed = config.account_sid.is_none()
                || config.auth_token.is_none()
                || config.api_key_sid.is_none()
                || config.api_key_secret.is_none();
            if needed {
                write_private(
                    &path,
                    &serde_json::to_string_pretty(&stored).unwrap_or_default(),
                )?;
            }
            (stored, needed)
        }
        Err(e) => return Err(e.into()),
    };
    let account_sid = config.account_sid.clone().unwrap_or(stored.account_sid);
    let api_key_sid = config.api_key_sid.clone().unwrap_or(stored.api_key_sid);
    let credentials = Credentials {
        account_sid: account_sid.parse().map_err(|_| {
            ServerError::Config(format!(
                "account SID {account_sid:?} must be AC + 32 hex digits"
            ))
        })?,
        auth_token: config.auth_token.clone().unwrap_or(stored.auth_token),
        api_key_sid: api_key_sid.parse().map_err(|_| {
            ServerError::Config(format!(
                "API key SID {api_key_sid:?} must be SK + 32 hex digits"
            ))
        })?,
        api_key_secret: config
            .api_key_secret
            .clone()
            .unwrap_or(stored.api_key_secret),
    };
    if credentials.auth_token.is_empty() || credentials.api_key_secret.is_empty() {
        return Err(ServerError::Config(
            "auth token and API key secret must not be empty".into(),
        ));
    }
    Ok((credentials, generated))
}

/// The credentials from configuration and the data directory, without generating any: for
/// commands that talk to an existing node (`confab token`, `confab chat`).
pub fn existing(config: &Config, data_dir: &Path) -> Result<Credentials, ServerError> {
    let path = data_dir.join("credentials.json");
    let all_configured = config.account_sid.is_some()
        && config.auth_token.is_some()
        && config.api_key_sid.is_some()
        && config.api_key_secret.is_some();
    if !all_configured && !path.exists() {
        return Err(ServerError::Config(format!(
            "no credentials: {} does not exist (start the node once) and CONFAB_API_KEY_SID / \
             CONFAB_API_KEY_SECRET / CONFAB_ACCOUNT_SID / CONFAB_AUTH_TOKEN are not all set",
            path.display()
        )));
    }
    resolve(config, data_dir).map(|(c, _)| c)
}

/// Writes the file whole or not at all: a temporary file beside it, synced, then renamed, so a
/// crash never leaves a truncated `credentials.json` that would stop every later start.
fn write_private(path: &Path, text: &str) -> Result<(), ServerError> {
    use std::io::Write;
    let temporary = path.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&temporary)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_credentials_are_kept_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::default();
        let (first, generated) = resolve(&config, dir.path()).unwrap();
        assert!(generated);
        let (second, generated) = resolve(&config, dir.path()).unwrap();
        assert!(!generated);
        assert_eq!(first.account_sid, second.account_sid);
        assert_eq!(first.auth_token, second.auth_token);
    }

    #[test]
    fn configured_credentials_win_and_are_validated() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            auth_token: Some("tok".into()),
            account_sid: Some("ACnot-a-sid".into()),
            ..Config::default()
        };
        assert!(resolve(&config, dir.path()).is_err());
        config.account_sid = Some(AccountSid::from_bits(5).to_string());
        let (c, _) = resolve(&config, dir.path()).unwrap();
        assert_eq!(c.auth_token, "tok");
        assert_eq!(c.account_sid, AccountSid::from_bits(5));
    }
}
