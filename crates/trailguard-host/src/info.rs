//! What a rule may say about itself.
//!
//! A rule's metadata is copied into every alert it raises and printed on
//! terminals, so it is checked once, when the rule is loaded: sizes are
//! bounded (host work per alert stays small whatever the rule declares),
//! identifiers have a plain spelling, and no text carries control
//! characters (no terminal escape sequences). Text a rule returns at run
//! time (error messages, trap frames) goes through [`printable`].

use trailguard_rule_sdk::RuleInfo;

/// Longest rule id.
pub const MAX_ID_BYTES: usize = 128;
/// Longest rule name.
pub const MAX_NAME_BYTES: usize = 256;
/// Longest version.
pub const MAX_VERSION_BYTES: usize = 64;
/// Longest description.
pub const MAX_DESCRIPTION_BYTES: usize = 16 << 10;
/// Most MITRE ATT&CK technique ids.
pub const MAX_TECHNIQUES: usize = 32;
/// Longest default configuration.
pub const MAX_DEFAULT_CONFIG_BYTES: usize = 256 << 10;
/// Most tags, and most references.
pub const MAX_TAGS: usize = 64;
/// Longest tag.
pub const MAX_TAG_BYTES: usize = 128;
/// Longest reference, and longest author.
pub const MAX_REFERENCE_BYTES: usize = 1024;
/// Most rules one detector evaluates (a Sigma pack's).
pub const MAX_RULES: usize = 10_000;
/// Most warnings a detector reports, and the longest kept.
pub const MAX_WARNINGS: usize = 1_000;
const MAX_WARNING_BYTES: usize = 1024;

/// Checks a rule's metadata; the error says what is wrong.
pub fn check_info(info: &RuleInfo) -> Result<(), String> {
    let id = &info.id;
    if id.is_empty()
        || id.len() > MAX_ID_BYTES
        || !id.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    {
        return Err(format!(
            "its id {:?} is not a plain identifier (1 to {MAX_ID_BYTES} ASCII letters, digits, `-`, `_`, `.` or `:`, starting with a letter or digit)",
            truncated(id, 80)
        ));
    }
    let text = |what: &str, value: &str, max: usize, newlines: bool| {
        if value.len() > max {
            return Err(format!(
                "its {what} is {} bytes, over the limit of {max}",
                value.len()
            ));
        }
        if value
            .chars()
            .any(|c| is_unprintable(c) && !(newlines && matches!(c, '\n' | '\t')))
        {
            return Err(format!(
                "its {what} contains control or invisible formatting characters: {}",
                printable(truncated(value, 80), 80)
            ));
        }
        Ok(())
    };
    text("name", &info.name, MAX_NAME_BYTES, false)?;
    text("version", &info.version, MAX_VERSION_BYTES, false)?;
    text(
        "description",
        &info.description,
        MAX_DESCRIPTION_BYTES,
        true,
    )?;
    if info.name.trim().is_empty() {
        return Err("its name is empty".into());
    }
    if semver::Version::parse(&info.version).is_err() {
        return Err(format!(
            "its version {:?} is not a semantic version (MAJOR.MINOR.PATCH)",
            info.version
        ));
    }
    if info.risk_score > 100 {
        return Err(format!("its risk score {} is over 100", info.risk_score));
    }
    if info.mitre_techniques.len() > MAX_TECHNIQUES {
        return Err(format!(
            "it lists {} MITRE ATT&CK techniques, over the limit of {MAX_TECHNIQUES}",
            info.mitre_techniques.len()
        ));
    }
    if let Some(bad) = info.mitre_techniques.iter().find(|t| !is_technique(t)) {
        return Err(format!(
            "{:?} is not a MITRE ATT&CK technique id (T1234 or T1234.567)",
            truncated(bad, 40)
        ));
    }
    text("author", &info.author, MAX_REFERENCE_BYTES, false)?;
    for (what, list, max) in [
        ("tag", &info.tags, MAX_TAG_BYTES),
        ("reference", &info.references, MAX_REFERENCE_BYTES),
    ] {
        if list.len() > MAX_TAGS {
            return Err(format!(
                "it lists {} {what}s, over the limit of {MAX_TAGS}",
                list.len()
            ));
        }
        for item in list {
            text(what, item, max, false)?;
        }
    }
    if info.default_config.len() > MAX_DEFAULT_CONFIG_BYTES {
        return Err(format!(
            "its default configuration is {} bytes, over the limit of {MAX_DEFAULT_CONFIG_BYTES}",
            info.default_config.len()
        ));
    }
    Ok(())
}

/// Checks the rules a detector says it evaluates (`rules`): each one's
/// metadata, their number, and that no two share an id. An empty list is
/// allowed (a pack configured with no rules raises nothing).
pub fn check_rules(rules: Vec<RuleInfo>) -> Result<Vec<RuleInfo>, String> {
    if rules.len() > MAX_RULES {
        return Err(format!(
            "it lists {} rules, over the limit of {MAX_RULES}",
            rules.len()
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, rule) in rules.iter().enumerate() {
        check_info(rule)
            .map_err(|e| format!("its rule #{i} ({}): {e}", printable(&rule.id, 80)))?;
        if !seen.insert(rule.id.as_str()) {
            return Err(format!("it lists rule id {:?} twice", rule.id));
        }
    }
    Ok(rules)
}

/// A detector's warnings, made safe to print and bounded in number and
/// length (the dropped ones are counted in a last line).
pub fn check_warnings(mut warnings: Vec<String>) -> Vec<String> {
    let dropped = warnings.len().saturating_sub(MAX_WARNINGS);
    warnings.truncate(MAX_WARNINGS);
    let mut warnings: Vec<String> = warnings
        .iter()
        .map(|w| printable(w, MAX_WARNING_BYTES))
        .collect();
    if dropped > 0 {
        warnings.push(format!("... and {dropped} more warnings"));
    }
    warnings
}

/// `T` and four digits, optionally `.` and three digits.
fn is_technique(id: &str) -> bool {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let Some(rest) = id.strip_prefix('T') else {
        return false;
    };
    match rest.split_once('.') {
        Some((parent, sub)) => digits(parent, 4) && digits(sub, 3),
        None => digits(rest, 4),
    }
}

/// Characters that change what a terminal or a page shows rather than
/// showing themselves: control characters, and the invisible formatting
/// characters that reorder or hide text (bidirectional overrides and
/// isolates, zero-width characters, the byte-order mark).
pub fn is_unprintable(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn truncated(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Text a rule produced, safe to print on one line: control and invisible
/// formatting characters escaped (no terminal escape sequences, no
/// reordered text), at most `max` bytes kept.
pub fn printable(text: &str, max: usize) -> String {
    let cut = truncated(text, max);
    let mut out = String::with_capacity(cut.len());
    for c in cut.chars() {
        if is_unprintable(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if cut.len() < text.len() {
        out.push_str(&format!("... ({} bytes)", text.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use trailguard_rule_sdk::Severity;

    use super::*;

    fn info() -> RuleInfo {
        RuleInfo {
            id: "acme-rule_1.x".into(),
            name: "A rule".into(),
            version: "1.2.3".into(),
            severity: Severity::High,
            risk_score: 73,
            mitre_techniques: vec!["T1078".into(), "T1078.004".into()],
            description: "Finds things.\nTwo lines.".into(),
            default_config: "{}".into(),
            tags: Vec::new(),
            references: Vec::new(),
            author: String::new(),
        }
    }

    #[test]
    fn plain_metadata_passes() {
        assert_eq!(check_info(&info()), Ok(()));
    }

    #[test]
    fn every_unbounded_or_unprintable_field_is_refused() {
        type Change = Box<dyn Fn(&mut RuleInfo)>;
        let cases: Vec<(Change, &str)> = vec![
            (
                Box::new(|i| i.id = "aws\u{1b}[2Jx".into()),
                "not a plain identifier",
            ),
            (Box::new(|i| i.id = String::new()), "not a plain identifier"),
            (Box::new(|i| i.id = "-x".into()), "not a plain identifier"),
            (
                Box::new(|i| i.id = "a".repeat(129)),
                "not a plain identifier",
            ),
            (Box::new(|i| i.id = "a b".into()), "not a plain identifier"),
            (
                Box::new(|i| i.name = "x\u{1b}]0;owned\u{7}".into()),
                "control or invisible",
            ),
            (
                Box::new(|i| i.name = "n".repeat(257)),
                "over the limit of 256",
            ),
            (Box::new(|i| i.name = " ".into()), "name is empty"),
            (
                Box::new(|i| i.version = "latest".into()),
                "not a semantic version",
            ),
            (
                Box::new(|i| i.version = "1.0.0\r".into()),
                "control or invisible",
            ),
            (
                Box::new(|i| i.description = "d".repeat(16 << 20)),
                "over the limit of 16384",
            ),
            (
                Box::new(|i| i.description = "\u{9b}31m".into()),
                "control or invisible",
            ),
            (
                Box::new(|i| i.name = "\u{202e}txt.exe".into()),
                "control or invisible",
            ),
            (
                Box::new(|i| i.description = "a\u{200b}b".into()),
                "control or invisible",
            ),
            (Box::new(|i| i.risk_score = 101), "over 100"),
            (
                Box::new(|i| i.mitre_techniques = vec!["T1078".into(); 50_000]),
                "over the limit of 32",
            ),
            (
                Box::new(|i| i.mitre_techniques = vec!["T1078.0041".into()]),
                "not a MITRE ATT&CK technique",
            ),
            (
                Box::new(|i| i.default_config = " ".repeat(1 << 20)),
                "default configuration",
            ),
        ];
        for (change, says) in cases {
            let mut bad = info();
            change(&mut bad);
            let e = check_info(&bad).expect_err(says);
            assert!(e.contains(says), "{e}");
            assert!(
                !e.chars().any(is_unprintable),
                "the message itself is printable: {e:?}"
            );
        }
    }

    #[test]
    fn printable_escapes_control_characters_and_bounds_length() {
        assert_eq!(printable("a\u{1b}[31mb\n", 100), "a\\u{1b}[31mb\\n");
        let long = printable(&"é".repeat(100), 5);
        assert_eq!(long, "éé... (200 bytes)");
    }
}
