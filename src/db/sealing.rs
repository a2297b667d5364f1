//! At start: opens the operator's secret key file and brings every sealed secret in the
//! database under its first key (plaintext values from before sealing, values sealed by a key
//! being rotated out). A key file that cannot open what the database holds stops the start.

use std::path::Path;

use actix_web::cookie::Key;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::{DbConn, settings, webhooks};
use crate::at_rest::{AtRestError, Purpose, SecretKeys, sealed_with};

/// Why the start cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum SealingError {
    #[error(transparent)]
    Keys(#[from] AtRestError),
    #[error("reading or re-sealing the stored secrets: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("the stored session key is unusable: {0}")]
    SessionKey(String),
}

const SESSION_KEY: &str = "session_key";

/// Where a sealed secret is stored.
enum Place {
    WebhookSecret(String),
    SessionKey,
}

impl Place {
    fn purpose(&self) -> Purpose {
        match self {
            Place::WebhookSecret(id) => Purpose::webhook_secret(id),
            Place::SessionKey => Purpose::session_key(),
        }
    }

    fn store(&self, conn: &mut DbConn, sealed: &str) -> diesel::QueryResult<()> {
        match self {
            Place::WebhookSecret(id) => webhooks::store_secret(conn, id, sealed),
            Place::SessionKey => settings::set(conn, SESSION_KEY, sealed),
        }
    }
}

/// The operator's keys, from `key_file` (created when missing and nothing is sealed yet), and
/// how many stored secrets were re-sealed under the first key.
pub fn open_keys(conn: &mut DbConn, key_file: &Path) -> Result<(SecretKeys, usize), SealingError> {
    let mut stored: Vec<(Place, String)> = webhooks::stored_secrets(conn)?
        .into_iter()
        .map(|(id, value)| (Place::WebhookSecret(id), value))
        .collect();
    if let Some(value) = settings::get(conn, SESSION_KEY)? {
        stored.push((Place::SessionKey, value));
    }
    let first_sealed = stored.iter().find_map(|(_, v)| sealed_with(v));
    let keys = match (
        SecretKeys::load(key_file, first_sealed.is_none()),
        first_sealed,
    ) {
        (Err(AtRestError::Read { source, .. }), Some(id))
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            return Err(AtRestError::MissingFile(id.to_string(), key_file.to_path_buf()).into());
        }
        (keys, _) => keys?,
    };
    let mut resealed = 0;
    for (place, value) in &stored {
        if let Some(sealed) = keys.reseal(value, &place.purpose())? {
            place.store(conn, &sealed)?;
            resealed += 1;
        }
    }
    Ok((keys, resealed))
}

/// The session cookie key, shared by all instances through the settings table (created, and
/// sealed, on first start).
pub fn session_key(conn: &mut DbConn, keys: &SecretKeys) -> Result<Key, SealingError> {
    let stored = settings::get_or_insert(conn, SESSION_KEY, || {
        let mut bytes = [0u8; 64];
        rand::fill(&mut bytes);
        keys.seal(&STANDARD.encode(bytes), &Purpose::session_key())
    })?;
    // A value stored before sealing (by an instance started without `open_keys`) is plaintext.
    let encoded = match sealed_with(&stored) {
        Some(_) => keys.open(&stored, &Purpose::session_key())?,
        None => stored,
    };
    let bytes = STANDARD
        .decode(encoded)
        .map_err(|e| SealingError::SessionKey(format!("not base64: {e}")))?;
    Key::try_from(bytes.as_slice()).map_err(|e| SealingError::SessionKey(e.to_string()))
}
