//! Verification of origin: is this component one we agreed to run?
//!
//! A trust policy (TOML) names publishers by their minisign public key and
//! pins individual components by SHA-256. A component is trusted when its
//! digest is pinned, or when `FILE.minisig` beside it is a valid minisign
//! signature of the file by one of the publishers' keys.
//!
//! ```toml
//! [[publisher]]
//! name = "acme-detections"
//! public_key = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3"
//!
//! [[pinned]]
//! sha256 = "da75d6e01e5bc59f6a2b86d0907043a972e5fed97727b6842c9d62043327d842"
//! note = "aws-unusual-asn 0.1.0, reviewed 2026-11-26"
//! ```

use std::io::Cursor;
use std::path::{Path, PathBuf};

use minisign::{PublicKey, SignatureBox};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// A publisher whose signatures are accepted.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Publisher {
    /// Who they are, for messages.
    pub name: String,
    /// Their minisign public key (the base64 line of `minisign.pub`).
    pub public_key: String,
}

/// A component accepted by its digest alone.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pinned {
    /// SHA-256 of the component file, lower-case hex.
    pub sha256: String,
    /// Why it is trusted, for the record.
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    publisher: Vec<Publisher>,
    #[serde(default)]
    pinned: Vec<Pinned>,
}

/// Loaded trust policy.
#[derive(Debug)]
pub struct TrustPolicy {
    publishers: Vec<(Publisher, PublicKey)>,
    pinned: Vec<Pinned>,
}

/// Why a component is trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trusted {
    /// Its SHA-256 is pinned.
    Pinned {
        /// The digest.
        sha256: String,
    },
    /// Signed by a publisher of the policy.
    Signed {
        /// The publisher's name.
        publisher: String,
        /// The signature's trusted comment.
        comment: String,
    },
}

/// The signature file of a component: `FILE.minisig`.
pub fn signature_path(component: &Path) -> PathBuf {
    let mut name = component.as_os_str().to_owned();
    name.push(".minisig");
    PathBuf::from(name)
}

impl TrustPolicy {
    /// Reads a policy file; every public key must parse.
    pub fn load(path: &Path) -> Result<TrustPolicy, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read trust policy {}: {e}", path.display()))?;
        let file: PolicyFile = toml::from_str(&text)
            .map_err(|e| format!("trust policy {} is invalid: {e}", path.display()))?;
        let mut publishers = Vec::new();
        for p in file.publisher {
            let key = PublicKey::from_base64(p.public_key.trim()).map_err(|e| {
                format!(
                    "trust policy {}: publisher `{}` has an invalid public key: {e}",
                    path.display(),
                    p.name
                )
            })?;
            publishers.push((p, key));
        }
        for pin in &file.pinned {
            if pin.sha256.len() != 64 || !pin.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "trust policy {}: pinned digest `{}` is not a SHA-256 in hex",
                    path.display(),
                    pin.sha256
                ));
            }
        }
        Ok(TrustPolicy {
            publishers,
            pinned: file.pinned,
        })
    }

    /// Decides whether `component` is trusted; the error says why not and
    /// what to do.
    pub fn verify(&self, component: &Path) -> Result<Trusted, String> {
        let bytes = std::fs::read(component)
            .map_err(|e| format!("cannot read {}: {e}", component.display()))?;
        let sha256 = format!("{:x}", Sha256::digest(&bytes));
        if self
            .pinned
            .iter()
            .any(|p| p.sha256.eq_ignore_ascii_case(&sha256))
        {
            return Ok(Trusted::Pinned { sha256 });
        }
        let sig_path = signature_path(component);
        let Ok(text) = std::fs::read_to_string(&sig_path) else {
            return Err(format!(
                "{} is not signed (no {}) and its SHA-256 {sha256} is not pinned in the trust policy",
                component.display(),
                sig_path.display()
            ));
        };
        let signature = SignatureBox::from_string(&text)
            .map_err(|e| format!("{} is not a minisign signature: {e}", sig_path.display()))?;
        let Some((publisher, key)) = self
            .publishers
            .iter()
            .find(|(_, key)| key.keynum() == signature.keynum())
        else {
            return Err(format!(
                "{} is signed by a key that is not in the trust policy",
                component.display()
            ));
        };
        minisign::verify(key, &signature, Cursor::new(&bytes), true, false, false).map_err(|e| {
            format!(
                "{} does not match its signature by `{}` ({e}): the file was modified after signing",
                component.display(),
                publisher.name
            )
        })?;
        Ok(Trusted::Signed {
            publisher: publisher.name.clone(),
            comment: signature.trusted_comment().unwrap_or_default(),
        })
    }
}
