//! `trailguard rules keygen | sign | verify`: minisign keys and detached
//! signatures for rule components and files of Sigma rules, checked
//! against a trust policy.

use std::io::{Cursor, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use minisign::{KeyPair, SecretKey, SecretKeyBox};
use trailguard_host::RuleFile;
use trailguard_host::trust::{
    TrustPolicy, Trusted, signature_path, signed_comment, signed_sigma_comment,
};

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
        if crate::sigma::is_rule_file(path) {
            sign_sigma(&key, path, args.comment.as_deref())?;
            continue;
        }
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

/// Signs a file of Sigma rules: the trusted comment says it is one
/// ([`signed_sigma_comment`]), so the signature cannot pass for a
/// component's, nor a component's for it.
fn sign_sigma(key: &SecretKey, path: &Path, note: Option<&str>) -> Result<()> {
    let file = RuleFile::read(path, crate::sigma::MAX_FILE_BYTES)?;
    std::str::from_utf8(file.bytes())
        .with_context(|| format!("Sigma rule file {} is not UTF-8", path.display()))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().replace(char::is_whitespace, "_"))
        .unwrap_or_default();
    let mut comment = signed_sigma_comment(&file_name);
    if let Some(note) = note {
        if note.contains(['\n', '\r']) {
            bail!("--comment must be one line");
        }
        comment.push_str(&format!(" note:{note}"));
    }
    let signature = minisign::sign(None, key, Cursor::new(file.bytes()), Some(&comment), None)?;
    let out = signature_path(path);
    std::fs::write(&out, signature.into_string())
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "signed {} (Sigma rules) -> {}",
        name(path.display()),
        name(out.display())
    );
    Ok(())
}

pub fn verify(args: VerifyArgs) -> Result<ExitCode> {
    let policy = TrustPolicy::load(&args.trust).map_err(anyhow::Error::msg)?;
    let runtime = crate::rules::runtime(false)?;
    let mut all = true;
    for file in &args.files {
        if crate::sigma::is_rule_file(file) {
            let checked = RuleFile::read(file, crate::sigma::MAX_FILE_BYTES)
                .map_err(|e| e.to_string())
                .and_then(|read| crate::sigma::verify(&policy, &read));
            match checked {
                Ok(trusted) => println!("{}: trusted ({})", name(file.display()), origin(&trusted)),
                Err(e) => {
                    println!("{}: NOT TRUSTED: {}", name(file.display()), name(e));
                    all = false;
                }
            }
            continue;
        }
        match runtime.compile_trusted(file, &policy) {
            Ok(rule) => match rule.origin() {
                Some(trusted) => {
                    println!("{}: trusted ({})", name(file.display()), origin(trusted))
                }
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

/// Why a file is trusted, for `rules verify`.
fn origin(trusted: &Trusted) -> String {
    match trusted {
        Trusted::Pinned { sha256 } => format!("pinned SHA-256 {sha256}"),
        Trusted::Signed { publisher, comment } => {
            format!("signed by {}; {}", name(publisher), name(comment))
        }
    }
}
