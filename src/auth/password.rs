//! Owner passwords, hashed with argon2id.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Shortest password accepted for the owner account.
pub const MIN_LEN: usize = 12;

pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    let mut salt = [0u8; 16];
    rand::fill(&mut salt);
    let salt = SaltString::encode_b64(&salt)?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// How many argon2 computations may run at once: each takes ~19 MiB and a core for a while,
/// so a burst of sign-in attempts queues here instead of taking the machine's memory.
const MAX_CONCURRENT_HASHING: usize = 2;

static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_CONCURRENT_HASHING);

/// Runs a password computation off the async workers, at most `MAX_CONCURRENT_HASHING` at a time.
pub async fn bounded<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let _permit = HASHING.acquire().await.map_err(|e| e.to_string())?;
    actix_web::web::block(f).await.map_err(|e| e.to_string())
}

/// [`verify`], bounded as [`bounded`] says.
pub async fn verify_bounded(password: String, stored: String) -> Result<bool, String> {
    bounded(move || verify(&password, &stored)).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn hash_verifies_only_the_same_password() {
        let h = super::hash("correct horse battery").unwrap();
        assert!(super::verify("correct horse battery", &h));
        assert!(!super::verify("correct horse battery!", &h));
        assert!(!super::verify("x", "not a hash"));
    }
}
