//! `trailguard rules keygen | sign | verify`: minisign keys and detached
//! signatures for rule components, checked against a trust policy.

use std::io::Cursor;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use minisign::{KeyPair, SecretKey, SecretKeyBox};
use trailguard_host::trust::{TrustPolicy, Trusted, signature_path};

use crate::cli::{KeygenArgs, SignArgs, VerifyArgs};

/// The environment variable holding the secret key's password.
const PASSWORD_VAR: &str = "TRAILGUARD_KEY_PASSWORD";

pub fn keygen(args: KeygenArgs) -> Result<ExitCode> {
    for path in [&args.secret_key, &args.public_key] {
        if path.exists() {
            bail!("{} exists; refusing to overwrite a key", path.display());
        }
    }
    let pair = match std::env::var(PASSWORD_VAR) {
        Ok(password) => KeyPair::generate_encrypted_keypair(Some(password))?,
        Err(_) => {
            eprintln!(
                "note: {PASSWORD_VAR} is not set: the secret key is stored unencrypted; keep it offline"
            );
            KeyPair::generate_unencrypted_keypair()?
        }
    };
    let public = pair.pk.to_box()?.into_string();
    std::fs::write(&args.secret_key, pair.sk.to_box(None)?.into_string())
        .with_context(|| format!("cannot write {}", args.secret_key.display()))?;
    std::fs::write(&args.public_key, &public)
        .with_context(|| format!("cannot write {}", args.public_key.display()))?;
    let key_line = public.lines().nth(1).unwrap_or_default();
    println!("public key (for a trust policy's [[publisher]] public_key):\n{key_line}");
    Ok(ExitCode::SUCCESS)
}

fn secret_key(args: &SignArgs) -> Result<SecretKey> {
    let text = std::fs::read_to_string(&args.secret_key)
        .with_context(|| format!("cannot read secret key {}", args.secret_key.display()))?;
    let boxed = SecretKeyBox::from_string(&text)
        .with_context(|| format!("{} is not a minisign secret key", args.secret_key.display()))?;
    if let Ok(key) = boxed.clone().into_unencrypted_secret_key() {
        return Ok(key);
    }
    let Ok(password) = std::env::var(PASSWORD_VAR) else {
        bail!(
            "{} is encrypted: set {PASSWORD_VAR} to its password",
            args.secret_key.display()
        );
    };
    boxed.into_secret_key(Some(password)).with_context(|| {
        format!(
            "cannot decrypt {} with {PASSWORD_VAR}",
            args.secret_key.display()
        )
    })
}

pub fn sign(args: SignArgs) -> Result<ExitCode> {
    let key = secret_key(&args)?;
    for file in &args.files {
        let bytes =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let comment = args
            .comment
            .clone()
            .unwrap_or_else(|| format!("file:{name}"));
        let signature = minisign::sign(None, &key, Cursor::new(bytes), Some(&comment), None)?;
        let out = signature_path(file);
        std::fs::write(&out, signature.into_string())
            .with_context(|| format!("cannot write {}", out.display()))?;
        println!("signed {} -> {}", file.display(), out.display());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn verify(args: VerifyArgs) -> Result<ExitCode> {
    let policy = TrustPolicy::load(&args.trust).map_err(anyhow::Error::msg)?;
    let mut all = true;
    for file in &args.files {
        match policy.verify(file) {
            Ok(Trusted::Pinned { sha256 }) => {
                println!("{}: trusted (pinned SHA-256 {sha256})", file.display())
            }
            Ok(Trusted::Signed { publisher, comment }) => {
                println!(
                    "{}: trusted (signed by {publisher}; {comment})",
                    file.display()
                )
            }
            Err(reason) => {
                println!("{}: NOT TRUSTED: {reason}", file.display());
                all = false;
            }
        }
    }
    Ok(if all {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
