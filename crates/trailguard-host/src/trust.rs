//! Verification of origin: is this component one we agreed to run?
//!
//! A trust policy (TOML) names publishers by their minisign public key and
//! pins individual components by SHA-256. A component is trusted when its
//! digest is pinned, or when `FILE.minisig` beside it is a valid minisign
//! signature of the file by one of the publishers' keys whose trusted
//! comment names the rule id and version the component declares
//! (`rule:ID version:VERSION`, written by `trailguard rules sign`), and the
//! publisher may sign that rule id (`rules`, exact ids or `prefix*`; all ids
//! when absent).
//!
//! The bytes verified are the bytes compiled: callers read the file once
//! ([`RuleFile`]) and hand the same bytes to [`TrustPolicy::verify_file`]
//! and to the compiler.
//!
//! ```toml
//! [[publisher]]
//! name = "acme-detections"
//! public_key = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3"
//! rules = ["acme-*"]
//!
//! [[pinned]]
//! sha256 = "da75d6e01e5bc59f6a2b86d0907043a972e5fed97727b6842c9d62043327d842"
//! note = "aws-unusual-asn 0.1.0, reviewed 2026-11-26"
//! ```

use std::io::Cursor;
use std::path::{Path, PathBuf};

use minisign::{PublicKey, SignatureBox};
use serde::Deserialize;
use trailguard_rule_sdk::RuleInfo;

use crate::rule_file::{ReadError, RuleFile, read_regular};

/// Largest signature file read (a minisign signature is under 1 KiB).
const MAX_SIGNATURE_BYTES: u64 = 64 << 10;

/// A publisher whose signatures are accepted.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Publisher {
    /// Who they are, for messages.
    pub name: String,
    /// Their minisign public key (the base64 line of `minisign.pub`).
    pub public_key: String,
    /// The rule ids they may sign: exact ids, or prefixes ending in `*`.
    /// Absent: any id.
    #[serde(default)]
    pub rules: Option<Vec<String>>,
}

impl Publisher {
    /// Whether this publisher may sign a rule with this id.
    fn may_sign(&self, id: &str) -> bool {
        self.rules.as_ref().is_none_or(|patterns| {
            patterns.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => id.starts_with(prefix),
                None => p == id,
            })
        })
    }
}

/// The trusted comment `trailguard rules sign` writes: binds the rule id
/// and version to the signature, so a signed build of one rule cannot pass
/// for another, and the version can be compared with the running one.
pub fn signed_comment(info: &RuleInfo, file_name: &str) -> String {
    format!("rule:{} version:{} file:{file_name}", info.id, info.version)
}

/// The trusted comment `trailguard rules sign` writes for a file of Sigma
/// rules: it says what the bytes are (Sigma rules, not a component, whose
/// comment names a rule id and version).
pub fn signed_sigma_comment(file_name: &str) -> String {
    format!("sigma:{file_name}")
}

/// The `key:value` of a trusted comment.
fn comment_value<'a>(comment: &'a str, key: &str) -> Option<&'a str> {
    comment
        .split_ascii_whitespace()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix(':'))
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
        let mut publishers: Vec<(Publisher, PublicKey)> = Vec::new();
        for p in file.publisher {
            let key = PublicKey::from_base64(p.public_key.trim()).map_err(|e| {
                format!(
                    "trust policy {}: publisher `{}` has an invalid public key: {e}",
                    path.display(),
                    p.name
                )
            })?;
            // Signatures name their key by number: two keys with one number
            // would let one publisher's signature be checked as another's.
            if let Some((other, _)) = publishers.iter().find(|(_, k)| k.keynum() == key.keynum()) {
                return Err(format!(
                    "trust policy {}: publishers `{}` and `{}` have keys with the same key id; each publisher needs its own key",
                    path.display(),
                    other.name,
                    p.name
                ));
            }
            if publishers.iter().any(|(other, _)| other.name == p.name) {
                return Err(format!(
                    "trust policy {}: two publishers are named `{}`; names must be unique",
                    path.display(),
                    p.name
                ));
            }
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

    /// Decides whether the bytes of `file` are trusted; the error says why
    /// not and what to do. The signature file is read once, like the rule.
    pub fn verify_file(&self, file: &RuleFile) -> Result<Trusted, String> {
        let component = file.path();
        let sha256 = file.sha256();
        if self
            .pinned
            .iter()
            .any(|p| p.sha256.eq_ignore_ascii_case(sha256))
        {
            return Ok(Trusted::Pinned {
                sha256: sha256.to_owned(),
            });
        }
        let sig_path = signature_path(component);
        let text = match read_regular(&sig_path, MAX_SIGNATURE_BYTES) {
            Ok(bytes) => String::from_utf8(bytes)
                .map_err(|_| format!("{} is not a minisign signature", sig_path.display()))?,
            Err(ReadError::Io(_)) => {
                return Err(format!(
                    "{} is not signed (no {}) and its SHA-256 {sha256} is not pinned in the trust policy",
                    component.display(),
                    sig_path.display()
                ));
            }
            Err(ReadError::Refused(why)) => {
                return Err(format!("signature {}: {why}", sig_path.display()));
            }
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
        minisign::verify(
            key,
            &signature,
            Cursor::new(file.bytes()),
            true,
            false,
            false,
        )
        .map_err(|e| {
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

    /// Checks what a verified signature claims against what the component
    /// declares: the signed rule id and version must be the component's,
    /// and the publisher must be allowed to sign that id.
    pub fn check_claims(&self, trusted: &Trusted, info: &RuleInfo) -> Result<(), String> {
        let Trusted::Signed { publisher, comment } = trusted else {
            // A pinned digest names these exact bytes, metadata included.
            return Ok(());
        };
        let (signed_id, signed_version) = (
            comment_value(comment, "rule"),
            comment_value(comment, "version"),
        );
        let (Some(signed_id), Some(signed_version)) = (signed_id, signed_version) else {
            return Err(format!(
                "its signature by `{publisher}` does not name the rule id and version (trusted comment {comment:?}); sign it again with `trailguard rules sign`, which binds them"
            ));
        };
        if signed_id != info.id || signed_version != info.version {
            return Err(format!(
                "it declares rule {} version {}, but `{publisher}` signed rule {signed_id} version {signed_version}",
                info.id, info.version
            ));
        }
        let allowed = self
            .publishers
            .iter()
            .find(|(p, _)| &p.name == publisher)
            .is_some_and(|(p, _)| p.may_sign(&info.id));
        if !allowed {
            return Err(format!(
                "publisher `{publisher}` may not sign rule id {} (the trust policy's `rules` for it do not match)",
                info.id
            ));
        }
        Ok(())
    }

    /// Checks what a verified signature of a file of Sigma rules claims: it
    /// was signed as Sigma rules ([`signed_sigma_comment`]), by a publisher
    /// allowed to sign the rules of the pack `pack_id` that runs them.
    pub fn check_sigma_claims(&self, trusted: &Trusted, pack_id: &str) -> Result<(), String> {
        let Trusted::Signed { publisher, comment } = trusted else {
            return Ok(());
        };
        if comment_value(comment, "sigma").is_none() {
            return Err(format!(
                "its signature by `{publisher}` was not made for Sigma rules (trusted comment {comment:?}); sign it with `trailguard rules sign`"
            ));
        }
        let allowed = self
            .publishers
            .iter()
            .find(|(p, _)| &p.name == publisher)
            .is_some_and(|(p, _)| p.may_sign(pack_id));
        if !allowed {
            return Err(format!(
                "publisher `{publisher}` may not sign Sigma rules (the trust policy's `rules` for it do not match `{pack_id}`)"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use minisign::KeyPair;
    use trailguard_rule_sdk::Severity;

    use super::*;

    fn info(id: &str, version: &str) -> RuleInfo {
        RuleInfo {
            id: id.into(),
            name: "n".into(),
            version: version.into(),
            severity: Severity::Low,
            risk_score: 1,
            mitre_techniques: Vec::new(),
            description: String::new(),
            default_config: String::new(),
            tags: Vec::new(),
            references: Vec::new(),
            author: String::new(),
        }
    }

    fn policy(dir: &Path, text: &str) -> Result<TrustPolicy, String> {
        let path = dir.join("trust.toml");
        std::fs::write(&path, text).expect("write");
        TrustPolicy::load(&path)
    }

    fn publisher(name: &str, key: &KeyPair, rules: &str) -> String {
        format!(
            "[[publisher]]\nname = \"{name}\"\npublic_key = \"{}\"\n{rules}\n",
            key.pk.to_base64()
        )
    }

    /// Writes `bytes` as `rule.wasm` with a signature carrying `comment`.
    fn signed(dir: &Path, key: &KeyPair, bytes: &[u8], comment: &str) -> RuleFile {
        let path = dir.join("rule.wasm");
        std::fs::write(&path, bytes).expect("write");
        let signature =
            minisign::sign(None, &key.sk, Cursor::new(bytes), Some(comment), None).expect("sign");
        std::fs::write(signature_path(&path), signature.into_string()).expect("write");
        RuleFile::read(&path, 1 << 20).expect("read")
    }

    #[test]
    fn two_publishers_with_one_key_id_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = KeyPair::generate_unencrypted_keypair().expect("key");
        let text = publisher("acme", &key, "") + &publisher("evil", &key, "");
        let e = policy(dir.path(), &text).expect_err("duplicate key id");
        assert!(e.contains("the same key id"), "{e}");
    }

    #[test]
    fn a_signature_binds_the_rule_id_and_version_and_the_publishers_ids() {
        let dir = tempfile::tempdir().expect("tempdir");
        let acme = KeyPair::generate_unencrypted_keypair().expect("key");
        let other = KeyPair::generate_unencrypted_keypair().expect("key");
        let policy = policy(
            dir.path(),
            &(publisher("acme", &acme, "rules = [\"acme-*\", \"exact\"]")
                + &publisher("other", &other, "")),
        )
        .expect("policy");
        let bytes = b"component bytes";

        let file = signed(
            dir.path(),
            &acme,
            bytes,
            "rule:acme-x version:1.2.0 file:r.wasm",
        );
        let trusted = policy.verify_file(&file).expect("verified");
        assert_eq!(
            policy.check_claims(&trusted, &info("acme-x", "1.2.0")),
            Ok(())
        );
        // The component declares another id or version than the signature.
        let e = policy
            .check_claims(&trusted, &info("acme-y", "1.2.0"))
            .expect_err("another id");
        assert!(e.contains("signed rule acme-x version 1.2.0"), "{e}");
        let e = policy
            .check_claims(&trusted, &info("acme-x", "1.1.0"))
            .expect_err("another version");
        assert!(e.contains("signed rule acme-x version 1.2.0"), "{e}");

        // A publisher signing an id outside its own.
        let file = signed(
            dir.path(),
            &acme,
            bytes,
            "rule:aws-unusual-asn version:9.0.0 file:r.wasm",
        );
        let trusted = policy.verify_file(&file).expect("verified");
        let e = policy
            .check_claims(&trusted, &info("aws-unusual-asn", "9.0.0"))
            .expect_err("not acme's id");
        assert!(e.contains("may not sign rule id aws-unusual-asn"), "{e}");
        // `exact` is an exact id, not a prefix.
        let file = signed(dir.path(), &acme, bytes, "rule:exactly version:1.0.0");
        let trusted = policy.verify_file(&file).expect("verified");
        assert!(
            policy
                .check_claims(&trusted, &info("exactly", "1.0.0"))
                .is_err()
        );

        // A publisher without `rules` may sign any id.
        let file = signed(dir.path(), &other, bytes, "rule:any version:1.0.0");
        let trusted = policy.verify_file(&file).expect("verified");
        assert_eq!(policy.check_claims(&trusted, &info("any", "1.0.0")), Ok(()));

        // An old signature that names no rule.
        let file = signed(dir.path(), &other, bytes, "file:rule.wasm");
        let trusted = policy.verify_file(&file).expect("verified");
        let e = policy
            .check_claims(&trusted, &info("any", "1.0.0"))
            .expect_err("no claims");
        assert!(e.contains("does not name the rule id and version"), "{e}");
    }

    #[test]
    fn a_sigma_signature_says_so_and_its_publisher_may_sign_the_pack() {
        let dir = tempfile::tempdir().expect("tempdir");
        let acme = KeyPair::generate_unencrypted_keypair().expect("key");
        let narrow = KeyPair::generate_unencrypted_keypair().expect("key");
        let policy = policy(
            dir.path(),
            &(publisher("acme", &acme, "rules = [\"sigma\"]")
                + &publisher("narrow", &narrow, "rules = [\"narrow-*\"]")),
        )
        .expect("policy");
        let rules = b"title: t\n";
        let file = signed(dir.path(), &acme, rules, &signed_sigma_comment("r.yml"));
        let trusted = policy.verify_file(&file).expect("verified");
        assert_eq!(policy.check_sigma_claims(&trusted, "sigma"), Ok(()));
        // The same file signed as a component is not a Sigma signature, nor
        // the other way round.
        let file = signed(
            dir.path(),
            &acme,
            rules,
            "rule:sigma version:1.0.0 file:r.yml",
        );
        let trusted = policy.verify_file(&file).expect("verified");
        let e = policy
            .check_sigma_claims(&trusted, "sigma")
            .expect_err("a component's");
        assert!(e.contains("not made for Sigma rules"), "{e}");
        let file = signed(dir.path(), &acme, rules, &signed_sigma_comment("r.yml"));
        let trusted = policy.verify_file(&file).expect("verified");
        assert!(
            policy
                .check_claims(&trusted, &info("sigma", "1.0.0"))
                .is_err()
        );
        // A publisher whose ids do not include the pack's.
        let file = signed(dir.path(), &narrow, rules, &signed_sigma_comment("r.yml"));
        let trusted = policy.verify_file(&file).expect("verified");
        let e = policy
            .check_sigma_claims(&trusted, "sigma")
            .expect_err("narrow");
        assert!(e.contains("may not sign Sigma rules"), "{e}");
    }

    #[test]
    fn the_bytes_verified_are_the_bytes_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = KeyPair::generate_unencrypted_keypair().expect("key");
        let policy = policy(dir.path(), &publisher("acme", &key, "")).expect("policy");
        let file = signed(dir.path(), &key, b"signed", "rule:a version:1.0.0");
        // The file changes after it was read: what was read is what counts.
        std::fs::write(file.path(), b"swapped").expect("write");
        assert!(policy.verify_file(&file).is_ok());
        let swapped = RuleFile::read(file.path(), 1 << 20).expect("read");
        let e = policy.verify_file(&swapped).expect_err("tampered");
        assert!(e.contains("modified after signing"), "{e}");
    }
}
