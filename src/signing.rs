//! `trailguard rules keygen | sign | verify`: minisign keys and detached
//! signatures for rule components, checked against a trust policy.

use std::io::{Cursor, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use minisign::{KeyPair, SecretKey, SecretKeyBox};
use trailguard_host::trust::{TrustPolicy, Trusted, signature_path, signed_comment};

use crate::cli::{KeygenArgs, SignArgs, VerifyArgs};
use crate::style::name;

/// The environment variable holding the secret key's password.
const PASSWORD_VAR: &str = "TRAILGUARD_KEY_PASSWORD";

pub fn keygen(args: KeygenArgs) -> Result<ExitCode> {
    let password = match std::env::var(PASSWORD_VAR) {
        Ok(password) => Some(password),
        Err(_) if args.unencrypted => {
            eprintln!(
                "note: --unencrypted: the secret key is stored in the clear; keep it offline"
            );
            None
        }
        Err(_) if std::io::stdin().is_terminal() => {
            let password = rpassword::prompt_password("password for the new secret key: ")?;
            let again = rpassword::prompt_password("the same password again: ")?;
            if password != again {
                bail!("the two passwords differ; no key written");
            }
            Some(password)
        }
        Err(_) => bail!(
            "the secret key is encrypted with a password: set {PASSWORD_VAR}, run on a terminal to be asked, or pass --unencrypted to store it in the clear"
        ),
    };
    let pair = match password {
        Some(password) => KeyPair::generate_encrypted_keypair(Some(password))?,
        None => KeyPair::generate_unencrypted_keypair()?,
    };
    let public = pair.pk.to_box()?.into_string();
    // The secret key is readable by its owner only, and never replaces a file.
    write_new(
        &args.secret_key,
        pair.sk.to_box(None)?.into_string().as_bytes(),
        0o600,
    )?;
    write_new(&args.public_key, public.as_bytes(), 0o644)?;
    let key_line = public.lines().nth(1).unwrap_or_default();
    println!("public key (for a trust policy's [[publisher]] public_key):\n{key_line}");
    Ok(ExitCode::SUCCESS)
}

/// Creates `path` with `mode`, refusing to overwrite anything.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).with_context(|| {
        if path.exists() {
            format!("{} exists; refusing to overwrite a key", path.display())
        } else {
            format!("cannot create {}", path.display())
        }
    })?;
    file.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))
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
    let runtime = crate::rules::runtime(false)?;
    for path in &args.files {
        // The bytes signed are the bytes whose rule id and version are read.
        let file = runtime.read_rule(path)?;
        let bytes = file.bytes().to_vec();
        let rule = runtime.compile_file(file, None)?;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut comment = signed_comment(rule.info(), &file_name.replace(char::is_whitespace, "_"));
        if let Some(note) = &args.comment {
            if note.contains(['\n', '\r']) {
                bail!("--comment must be one line");
            }
            comment.push_str(&format!(" note:{note}"));
        }
        let signature = minisign::sign(None, &key, Cursor::new(bytes), Some(&comment), None)?;
        let out = signature_path(path);
        std::fs::write(&out, signature.into_string())
            .with_context(|| format!("cannot write {}", out.display()))?;
        println!(
            "signed {} (rule {} version {}) -> {}",
            name(path.display()),
            rule.info().id,
            rule.info().version,
            name(out.display())
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn verify(args: VerifyArgs) -> Result<ExitCode> {
    let policy = TrustPolicy::load(&args.trust).map_err(anyhow::Error::msg)?;
    let runtime = crate::rules::runtime(false)?;
    let mut all = true;
    for file in &args.files {
        match runtime.compile_trusted(file, &policy) {
            Ok(rule) => match rule.origin() {
                Some(Trusted::Pinned { sha256 }) => {
                    println!(
                        "{}: trusted (pinned SHA-256 {sha256})",
                        name(file.display())
                    )
                }
                Some(Trusted::Signed { publisher, comment }) => println!(
                    "{}: trusted (signed by {}; {})",
                    name(file.display()),
                    name(publisher),
                    name(comment)
                ),
                None => unreachable!("compile_trusted records the origin"),
            },
            Err(e) => {
                println!("{}: NOT TRUSTED: {}", name(file.display()), name(e));
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
