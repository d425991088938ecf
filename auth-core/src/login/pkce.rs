//! PKCE (RFC 7636, method S256) and the OAuth `state`, from the operating system's CSPRNG.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::login::LoginError;
use crate::secret::Secret;

/// A code verifier and its S256 challenge. `Debug` shows a fingerprint of the verifier.
#[derive(Clone, Debug)]
pub struct Pkce {
    /// 64 random bytes, base64url without padding (86 characters).
    pub verifier: Secret,
    /// `base64url(sha256(verifier))`, without padding.
    pub challenge: String,
}

/// `n` random bytes as base64url without padding.
fn random_b64(n: usize) -> Result<String, LoginError> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes)
        .map_err(|e| LoginError::Server(format!("no random bytes from the system: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

impl Pkce {
    /// A fresh pair.
    pub fn generate() -> Result<Pkce, LoginError> {
        let verifier = random_b64(64)?;
        Ok(Pkce {
            challenge: challenge_of(&verifier),
            verifier: Secret::new(verifier),
        })
    }
}

/// The S256 challenge of a verifier.
pub fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A fresh `state`: 32 random bytes, base64url without padding.
pub fn generate_state() -> Result<String, LoginError> {
    random_b64(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_the_rfc_7636_example() {
        // RFC 7636 appendix B.
        assert_eq!(
            challenge_of("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn verifiers_and_states_are_long_url_safe_and_differ_each_time() {
        let (a, b) = (Pkce::generate().unwrap(), Pkce::generate().unwrap());
        assert_eq!(a.verifier.expose().len(), 86);
        assert_ne!(a.verifier, b.verifier);
        assert_eq!(a.challenge, challenge_of(a.verifier.expose()));
        let s = generate_state().unwrap();
        assert_eq!(s.len(), 43);
        assert!(s
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_ne!(s, generate_state().unwrap());
    }
}
