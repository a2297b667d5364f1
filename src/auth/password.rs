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
