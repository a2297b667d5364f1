//! Secrets Roster must use again, not only check — webhook signing secrets and the session
//! cookie key — are stored sealed (AES-256-GCM) under a key the operator holds outside the
//! database, so a dump of the database alone cannot forge webhooks or sessions.
//!
//! The key file holds one key per line (base64 of 32 bytes; `#` starts a comment). The first
//! key seals; every key opens. To rotate, add a new key as the last line on every instance and
//! restart them, then move it to the first line and restart again (each start re-seals what an
//! older key sealed, see [`reseal`]), then drop the old line.

use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

/// What a sealed value starts with; anything else in a sealed column is a plaintext value
/// stored before sealing existed, sealed at the next start.
const SEALED_PREFIX: &str = "sealed1.";
const NONCE_LEN: usize = 12;

/// Where a sealed value lives. Bound into the seal, so a value copied to another row or
/// column does not open there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purpose(String);

impl Purpose {
    /// The signing secret of webhook endpoint `endpoint_id`.
    pub fn webhook_secret(endpoint_id: &str) -> Purpose {
        Purpose(format!("webhook_endpoints.secret/{endpoint_id}"))
    }

    /// The session cookie key (one per database).
    pub fn session_key() -> Purpose {
        Purpose("settings/session_key".into())
    }
}

/// Why a secret could not be sealed, opened, or the keys read.
#[derive(Debug, thiserror::Error)]
pub enum AtRestError {
    #[error("cannot read the secret key file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the secret key file {path}: {source}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the secret key file {path}, line {line}, is not a key: each line must be base64 of 32 bytes (make one with `roster secret-key new`)"
    )]
    BadKey { path: PathBuf, line: usize },
    #[error("the secret key file {0} holds no key (make one with `roster secret-key new`)")]
    Empty(PathBuf),
    #[error(
        "a secret in the database was sealed with key {0}, which the secret key file does not hold: give this instance the key file the other instances use (--secret-key-file)"
    )]
    UnknownKey(String),
    #[error(
        "the database holds secrets sealed with key {0}, but the secret key file {1} does not exist: give this instance the key file the other instances use (--secret-key-file)"
    )]
    MissingFile(String, PathBuf),
    #[error("a sealed secret is damaged or was moved from where it was sealed")]
    Damaged,
}

/// One 256-bit key and its short public id (a hash prefix, stored beside what it seals).
#[derive(Clone)]
struct SecretKey {
    id: String,
    cipher: Aes256Gcm,
}

impl SecretKey {
    fn from_bytes(bytes: &[u8; 32]) -> SecretKey {
        let digest = Sha256::new()
            .chain_update(b"roster secret key id\0")
            .chain_update(bytes)
            .finalize();
        SecretKey {
            id: hex::encode(&digest[..4]),
            cipher: Aes256Gcm::new(bytes.into()),
        }
    }
}

/// The operator's keys: the first seals, all open.
#[derive(Clone)]
pub struct SecretKeys {
    keys: Vec<SecretKey>,
}

impl std::fmt::Debug for SecretKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Ids only: a key never reaches a log line.
        f.debug_struct("SecretKeys")
            .field("ids", &self.ids())
            .finish()
    }
}

/// A fresh key, as one line of a key file.
pub fn new_key_line() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    STANDARD.encode(bytes)
}

impl SecretKeys {
    /// Keys from the text of a key file (see the module comment).
    pub fn parse(text: &str, path: &Path) -> Result<SecretKeys, AtRestError> {
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let bad = || AtRestError::BadKey {
                path: path.to_path_buf(),
                line: n + 1,
            };
            let bytes: [u8; 32] = STANDARD
                .decode(line)
                .map_err(|_| bad())?
                .try_into()
                .map_err(|_| bad())?;
            keys.push(SecretKey::from_bytes(&bytes));
        }
        if keys.is_empty() {
            return Err(AtRestError::Empty(path.to_path_buf()));
        }
        Ok(SecretKeys { keys })
    }

    /// Reads the key file at `path`. When it does not exist and `may_create` (the database
    /// holds nothing sealed yet), creates it with a new key, readable by its owner only.
    pub fn load(path: &Path, may_create: bool) -> Result<SecretKeys, AtRestError> {
        match std::fs::read_to_string(path) {
            Ok(text) => SecretKeys::parse(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && may_create => {
                let text = format!(
                    "# Roster's secret key: seals webhook signing secrets and the session key in the database.\n# Keep it apart from database backups; every instance on one database needs the same file.\n{}\n",
                    new_key_line()
                );
                write_private(path, &text).map_err(|source| AtRestError::Create {
                    path: path.to_path_buf(),
                    source,
                })?;
                SecretKeys::parse(&text, path)
            }
            Err(source) => Err(AtRestError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The key ids, sealing key first.
    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }

    /// `plaintext` sealed under the first key for `purpose`.
    pub fn seal(&self, plaintext: &str, purpose: &Purpose) -> String {
        let key = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce);
        // Encryption with a valid key and nonce length cannot fail (only an oversized
        // message could, and secrets are short).
        let sealed = key
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: purpose.0.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{SEALED_PREFIX}{}.{}", key.id, URL_SAFE_NO_PAD.encode(out))
    }

    /// Opens a value sealed by [`Self::seal`] (under any of the keys) for `purpose`.
    pub fn open(&self, stored: &str, purpose: &Purpose) -> Result<String, AtRestError> {
        let Some((key_id, body)) = sealed_parts(stored) else {
            return Err(AtRestError::Damaged);
        };
        let key = self
            .keys
            .iter()
            .find(|k| k.id == key_id)
            .ok_or_else(|| AtRestError::UnknownKey(key_id.to_string()))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| AtRestError::Damaged)?;
        if bytes.len() < NONCE_LEN {
            return Err(AtRestError::Damaged);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let plain = key
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: purpose.0.as_bytes(),
                },
            )
            .map_err(|_| AtRestError::Damaged)?;
        String::from_utf8(plain).map_err(|_| AtRestError::Damaged)
    }

    /// What a stored value should become: `None` when it is already sealed under the first
    /// key; a plaintext value (from before sealing) or one sealed under an older key is
    /// sealed again under the first.
    pub fn reseal(&self, stored: &str, purpose: &Purpose) -> Result<Option<String>, AtRestError> {
        match sealed_parts(stored) {
            Some((id, _)) if id == self.keys[0].id => Ok(None),
            Some(_) => {
                let plain = self.open(stored, purpose)?;
                Ok(Some(self.seal(&plain, purpose)))
            }
            None => Ok(Some(self.seal(stored, purpose))),
        }
    }
}

/// The key id and sealed bytes of a sealed value; `None` for a plaintext one.
fn sealed_parts(stored: &str) -> Option<(&str, &str)> {
    stored.strip_prefix(SEALED_PREFIX)?.split_once('.')
}

/// The id of the key that sealed `stored`, if it is sealed.
pub fn sealed_with(stored: &str) -> Option<&str> {
    sealed_parts(stored).map(|(id, _)| id)
}

/// Creates `path` with `text`, readable and writable by its owner only; refuses to replace an
/// existing file.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(lines: &[&str]) -> SecretKeys {
        SecretKeys::parse(&lines.join("\n"), Path::new("k")).unwrap()
    }

    #[test]
    fn a_sealed_value_opens_only_for_its_purpose_and_hides_the_plaintext() {
        let line = new_key_line();
        let k = keys(&[&line]);
        let p = Purpose::webhook_secret("a");
        let sealed = k.seal("whsec_topsecret", &p);
        assert!(!sealed.contains("topsecret"));
        assert_eq!(k.open(&sealed, &p).unwrap(), "whsec_topsecret");
        assert!(matches!(
            k.open(&sealed, &Purpose::webhook_secret("b")),
            Err(AtRestError::Damaged)
        ));
        // Two seals of one value differ (fresh nonce).
        assert_ne!(sealed, k.seal("whsec_topsecret", &p));
    }

    #[test]
    fn rotation_opens_with_an_old_key_and_reseals_under_the_new() {
        let (old, new) = (new_key_line(), new_key_line());
        let before = keys(&[&old]);
        let p = Purpose::session_key();
        let sealed = before.seal("k", &p);
        let rotated = keys(&[&new, &old]);
        let resealed = rotated.reseal(&sealed, &p).unwrap().unwrap();
        assert_eq!(sealed_with(&resealed), Some(rotated.ids()[0]));
        assert_eq!(rotated.reseal(&resealed, &p).unwrap(), None);
        assert_eq!(keys(&[&new]).open(&resealed, &p).unwrap(), "k");
        assert!(matches!(
            keys(&[&new]).open(&sealed, &p),
            Err(AtRestError::UnknownKey(_))
        ));
        // A plaintext value from before sealing is sealed.
        let sealed_plain = rotated.reseal("whsec_x", &p).unwrap().unwrap();
        assert_eq!(rotated.open(&sealed_plain, &p).unwrap(), "whsec_x");
    }

    #[test]
    fn a_bad_key_file_names_its_line() {
        let err = SecretKeys::parse("# c\n\nnot-a-key\n", Path::new("f")).unwrap_err();
        assert!(matches!(err, AtRestError::BadKey { line: 3, .. }), "{err}");
        assert!(matches!(
            SecretKeys::parse("# only a comment\n", Path::new("f")),
            Err(AtRestError::Empty(_))
        ));
        let short = STANDARD.encode([0u8; 16]);
        assert!(SecretKeys::parse(&short, Path::new("f")).is_err());
    }

    #[test]
    fn debug_shows_ids_not_keys() {
        let line = new_key_line();
        let shown = format!("{:?}", keys(&[&line]));
        assert!(!shown.contains(&line));
        assert!(shown.contains(keys(&[&line]).ids()[0]));
    }
}
