//! `trailguard new-rule NAME`: a new rule crate, from the template in
//! `src/template/`, that builds, tests and loads as it is.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::cli::NewRuleArgs;

const CARGO_TOML: &str = include_str!("template/Cargo.toml.tmpl");
const LIB_RS: &str = include_str!("template/lib.rs.tmpl");
const COMPONENT_RS: &str = include_str!("template/component.rs.tmpl");

/// The names a template is filled with.
#[derive(Debug, PartialEq, Eq)]
struct Names {
    /// `root-activity`: the directory under `modules/`.
    dir: String,
    /// `rule-root-activity`.
    krate: String,
    /// `aws-root-activity`.
    rule_id: String,
    /// `RootActivity`.
    type_name: String,
    /// `Root activity`.
    title: String,
}

impl Names {
    fn new(name: &str, id: Option<&str>, title: Option<&str>) -> Result<Names> {
        let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.ends_with('-')
            && !name.contains("--");
        if !valid {
            bail!(
                "rule name `{name}` must be lower-case words joined by `-`, e.g. `root-activity`"
            );
        }
        let words: Vec<&str> = name.split('-').collect();
        let type_name = words
            .iter()
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect();
        let default_title = {
            let sentence = words.join(" ");
            let mut c = sentence.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        };
        Ok(Names {
            dir: name.to_owned(),
            krate: format!("rule-{name}"),
            rule_id: id.map_or_else(
                || {
                    if name.starts_with("aws-") {
                        name.to_owned()
                    } else {
                        format!("aws-{name}")
                    }
                },
                str::to_owned,
            ),
            type_name,
            title: title.map_or(default_title, str::to_owned),
        })
    }

    fn fill(&self, template: &str) -> String {
        template
            .replace("__CRATE_SNAKE__", &self.krate.replace('-', "_"))
            .replace("__CRATE__", &self.krate)
            .replace("__RULE_ID__", &self.rule_id)
            .replace("__TYPE__", &self.type_name)
            .replace("__TITLE__", &self.title)
    }
}

pub fn new_rule(args: NewRuleArgs) -> Result<ExitCode> {
    let names = Names::new(&args.name, args.id.as_deref(), args.title.as_deref())?;
    if !args.dir.is_dir() {
        bail!(
            "{} is not a directory: run `trailguard new-rule` from the trailguard workspace root, or pass --dir",
            args.dir.display()
        );
    }
    let root: PathBuf = args.dir.join(&names.dir);
    if root.exists() {
        bail!("{} already exists; pick another name", root.display());
    }
    std::fs::create_dir_all(root.join("src"))?;
    std::fs::create_dir_all(root.join("tests"))?;
    for (file, template) in [
        ("Cargo.toml", CARGO_TOML),
        ("src/lib.rs", LIB_RS),
        ("tests/component.rs", COMPONENT_RS),
    ] {
        let path = root.join(file);
        std::fs::write(&path, names.fill(template))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!(
        "created rule {} (crate {}) in {}",
        names.rule_id,
        names.krate,
        root.display()
    );
    println!("next:");
    println!(
        "  cargo xtask test                                     # builds it as a component and runs its tests"
    );
    println!(
        "  target/release/trailguard rules inspect target/modules/{}.wasm",
        names.krate
    );
    println!(
        "then write its logic in {}/src/lib.rs (see docs/writing-a-rule.md)",
        root.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_a_rule_name() {
        let n = Names::new("root-activity", None, None).expect("valid");
        assert_eq!(n.krate, "rule-root-activity");
        assert_eq!(n.rule_id, "aws-root-activity");
        assert_eq!(n.type_name, "RootActivity");
        assert_eq!(n.title, "Root activity");
        let n = Names::new("aws-s3-wipe2", Some("x-wipe"), Some("Bucket wiped")).expect("valid");
        assert_eq!(
            (n.rule_id.as_str(), n.type_name.as_str(), n.title.as_str()),
            ("x-wipe", "AwsS3Wipe2", "Bucket wiped")
        );
        for bad in ["Root", "root_activity", "-x", "x-", "a--b", "1x", ""] {
            assert!(Names::new(bad, None, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_placeholder_is_filled() {
        let n = Names::new("root-activity", None, None).expect("valid");
        for template in [CARGO_TOML, LIB_RS, COMPONENT_RS] {
            let filled = n.fill(template);
            assert!(!filled.contains("__"), "{filled}");
        }
    }
}
