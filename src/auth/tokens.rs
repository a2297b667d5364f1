//! Random secrets (SCIM bearer tokens, portal links, owner setup links): shown once, stored
//! only as SHA-256, looked up by hash and compared in constant time.

use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a secret is for; the prefix lets secret scanners recognise a leaked one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    ScimToken,
    PortalLink,
    OwnerSetup,
    ApiKey,
}

impl SecretKind {
    pub const ALL: [SecretKind; 4] = [
        SecretKind::ScimToken,
        SecretKind::PortalLink,
        SecretKind::OwnerSetup,
        SecretKind::ApiKey,
    ];

    pub fn prefix(self) -> &'static str {
        match self {
            SecretKind::ScimToken => "roster_scim_",
            SecretKind::PortalLink => "roster_portal_",
            SecretKind::OwnerSetup => "roster_setup_",
            SecretKind::ApiKey => "roster_key_",
        }
    }
}

/// Length of the random part: 32 base62 characters, about 190 bits.
const RANDOM_LEN: usize = 32;

/// A freshly generated secret: the plaintext (to show once) and its hash (to store).
pub struct NewSecret {
    pub plaintext: String,
    pub sha256: Vec<u8>,
}

impl std::fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewSecret(<redacted>)")
    }
}

impl NewSecret {
    pub fn generate(kind: SecretKind) -> NewSecret {
        let plaintext = format!(
            "{}{}",
            kind.prefix(),
            Alphanumeric.sample_string(&mut rand::rng(), RANDOM_LEN)
        );
        let sha256 = hash(&plaintext);
        NewSecret { plaintext, sha256 }
    }

    /// The last characters, safe to display to tell tokens apart.
    pub fn suffix(&self) -> String {
        self.plaintext[self.plaintext.len() - 4..].to_string()
    }
}

/// SHA-256 of a presented secret. Unsalted is right for high-entropy random secrets.
pub fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// A presented secret worth a database lookup: right prefix and shape. Anything else is
/// refused without touching the database.
pub fn plausible(kind: SecretKind, presented: &str) -> bool {
    presented.strip_prefix(kind.prefix()).is_some_and(|rest| {
        rest.len() == RANDOM_LEN && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// Constant-time equality of two hashes or tokens.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secret_is_prefixed_plausible_and_hashes_to_stored_value() {
        let s = NewSecret::generate(SecretKind::ScimToken);
        assert!(s.plaintext.starts_with("roster_scim_"));
        assert!(plausible(SecretKind::ScimToken, &s.plaintext));
        assert!(!plausible(SecretKind::PortalLink, &s.plaintext));
        assert!(ct_eq(&hash(&s.plaintext), &s.sha256));
        assert_ne!(
            NewSecret::generate(SecretKind::ScimToken).plaintext,
            s.plaintext
        );
    }

    #[test]
    fn implausible_tokens_are_refused() {
        assert!(!plausible(SecretKind::ScimToken, "roster_scim_short"));
        assert!(!plausible(SecretKind::ScimToken, "Bearer xyz"));
        assert!(!plausible(
            SecretKind::ScimToken,
            "roster_scim_abcdefghijklmnopqrstuvwxyz01234!"
        ));
    }
}
