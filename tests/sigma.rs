//! The `sigma` rule pack end to end: SigmaHQ's 57 CloudTrail rules
//! (`rules/sigma`) through `trailguard run` on every shared CloudTrail set,
//! their matches (event id, rule id) checked against an independent
//! evaluation written here from `../shared/specs/sigma.md` (not rsigma, the
//! library the pack uses).
//!
//! The shared data is beside the repository in CI; in a plain clone the
//! comparison says so and checks only the bundled fixtures.

mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use common::{fixture_mmdb, root, stderr, trailguard};
use serde_json::Value;

/// The independent evaluator: Sigma's detection semantics, as the spec
/// states them, for what SigmaHQ's CloudTrail rules use.
mod reference {
    use serde_json::Value;
    use yaml_serde::Value as Yaml;

    /// One rule: its id and its detection.
    pub struct Rule {
        pub id: String,
        selections: Vec<(String, Selection)>,
        condition: String,
    }

    /// A named selection: a map (all items) or a list of maps (any).
    enum Selection {
        AllOf(Vec<Item>),
        AnyOf(Vec<Vec<Item>>),
    }

    struct Item {
        field: String,
        modifiers: Vec<String>,
        values: Vec<Yaml>,
    }

    fn items(map: &yaml_serde::Mapping) -> Vec<Item> {
        map.iter()
            .map(|(key, values)| {
                let key = key.as_str().expect("field names are strings");
                let mut parts = key.split('|');
                let field = parts.next().unwrap_or_default().to_owned();
                let values = match values {
                    Yaml::Sequence(list) => list.clone(),
                    one => vec![one.clone()],
                };
                Item {
                    field,
                    modifiers: parts.map(str::to_owned).collect(),
                    values,
                }
            })
            .collect()
    }

    impl Rule {
        pub fn parse(text: &str) -> Rule {
            let doc: Yaml = yaml_serde::from_str(text).expect("YAML");
            let detection = doc["detection"].as_mapping().expect("detection");
            let mut selections = Vec::new();
            let mut condition = String::new();
            for (name, body) in detection {
                let name = name.as_str().expect("name").to_owned();
                if name == "condition" {
                    condition = body.as_str().expect("one condition").to_owned();
                    continue;
                }
                let selection = match body {
                    Yaml::Mapping(map) => Selection::AllOf(items(map)),
                    Yaml::Sequence(list) => Selection::AnyOf(
                        list.iter()
                            .map(|m| items(m.as_mapping().expect("a list of maps")))
                            .collect(),
                    ),
                    other => panic!("unsupported selection {other:?}"),
                };
                selections.push((name, selection));
            }
            Rule {
                id: doc["id"].as_str().expect("id").to_owned(),
                selections,
                condition,
            }
        }

        pub fn matches(&self, record: &Value) -> bool {
            let tokens: Vec<String> = self
                .condition
                .replace('(', " ( ")
                .replace(')', " ) ")
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            let mut at = 0;
            let result = self.or(&tokens, &mut at, record);
            assert_eq!(
                at,
                tokens.len(),
                "condition {:?} parsed whole",
                self.condition
            );
            result
        }

        fn or(&self, t: &[String], at: &mut usize, r: &Value) -> bool {
            let mut value = self.and(t, at, r);
            while t.get(*at).is_some_and(|w| w == "or") {
                *at += 1;
                value |= self.and(t, at, r);
            }
            value
        }

        fn and(&self, t: &[String], at: &mut usize, r: &Value) -> bool {
            let mut value = self.not(t, at, r);
            while t.get(*at).is_some_and(|w| w == "and") {
                *at += 1;
                value &= self.not(t, at, r);
            }
            value
        }

        fn not(&self, t: &[String], at: &mut usize, r: &Value) -> bool {
            if t[*at] == "not" {
                *at += 1;
                return !self.not(t, at, r);
            }
            self.atom(t, at, r)
        }

        fn atom(&self, t: &[String], at: &mut usize, r: &Value) -> bool {
            let word = t[*at].clone();
            *at += 1;
            match word.as_str() {
                "(" => {
                    let value = self.or(t, at, r);
                    assert_eq!(t[*at], ")");
                    *at += 1;
                    value
                }
                "1" | "all" => {
                    assert_eq!(t[*at], "of");
                    let pattern = t[*at + 1].clone();
                    *at += 2;
                    let chosen = self.selections.iter().filter(|(name, _)| {
                        pattern == "them"
                            || match pattern.strip_suffix('*') {
                                Some(prefix) => name.starts_with(prefix),
                                None => *name == pattern,
                            }
                    });
                    let mut results = chosen.map(|(_, s)| selection(s, r));
                    if word == "1" {
                        results.any(|m| m)
                    } else {
                        results.all(|m| m)
                    }
                }
                name => {
                    let (_, s) = self
                        .selections
                        .iter()
                        .find(|(n, _)| n == name)
                        .unwrap_or_else(|| panic!("selection {name}"));
                    selection(s, r)
                }
            }
        }
    }

    fn selection(s: &Selection, r: &Value) -> bool {
        match s {
            Selection::AllOf(items) => items.iter().all(|i| item(i, r)),
            Selection::AnyOf(maps) => maps.iter().any(|m| m.iter().all(|i| item(i, r))),
        }
    }

    /// The value at a dotted path: at each level a flat key with the dots
    /// first, then the nested path; a key in another ASCII case when the
    /// exact one is missing; a string holding an object is read into.
    pub fn lookup(value: &Value, path: &str) -> Option<Value> {
        let object = match value {
            Value::Object(o) => o.clone(),
            Value::String(s) => match serde_json::from_str::<Value>(s.trim()) {
                Ok(Value::Object(o)) => o,
                _ => return None,
            },
            _ => return None,
        };
        let find = |key: &str| {
            object
                .get(key)
                .or_else(|| {
                    object
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(key))
                        .map(|(_, v)| v)
                })
                .cloned()
        };
        if let Some(v) = find(path) {
            return Some(v);
        }
        // Longest head first, as a flat key with dots wins.
        for (dot, _) in path.rmatch_indices('.') {
            if let Some(v) = find(&path[..dot]) {
                return lookup(&v, &path[dot + 1..]);
            }
        }
        None
    }

    /// A scalar's text; objects as their JSON text.
    fn text(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Number(n) => Some(n.to_string()),
            Value::Object(_) => Some(v.to_string()),
            Value::Null | Value::Array(_) => None,
        }
    }

    /// Sigma's wildcards: `*` any run, `?` one character, `\` escapes.
    fn glob(pattern: &str, text: &str) -> bool {
        let mut tokens: Vec<Option<char>> = Vec::new(); // None: `*`
        let mut single = Vec::new(); // positions of `?`
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(n @ ('*' | '?' | '\\')) => tokens.push(Some(n)),
                    Some(n) => {
                        tokens.push(Some('\\'));
                        tokens.push(Some(n));
                    }
                    None => tokens.push(Some('\\')),
                },
                '*' => tokens.push(None),
                '?' => {
                    single.push(tokens.len());
                    tokens.push(Some('\u{0}'));
                }
                c => tokens.push(Some(c)),
            }
        }
        let text: Vec<char> = text.chars().collect();
        // Dynamic programming over (token, char).
        let mut reach = vec![false; text.len() + 1];
        reach[0] = true;
        for (i, token) in tokens.iter().enumerate() {
            let mut next = vec![false; text.len() + 1];
            match token {
                None => {
                    let mut on = false;
                    for j in 0..=text.len() {
                        on |= reach[j];
                        next[j] = on;
                    }
                }
                Some(c) => {
                    for j in 0..text.len() {
                        if reach[j] && (single.contains(&i) || text[j] == *c) {
                            next[j + 1] = true;
                        }
                    }
                }
            }
            reach = next;
        }
        reach[text.len()]
    }

    fn item(i: &Item, record: &Value) -> bool {
        let found = lookup(record, &i.field);
        let m = |name: &str| i.modifiers.iter().any(|x| x == name);
        if m("fieldref") {
            // Equal to another field's text, case-sensitive.
            let mine = found.as_ref().and_then(text);
            return i.values.iter().any(|other| {
                let other = other.as_str().expect("a field name");
                let theirs = lookup(record, other).as_ref().and_then(text);
                mine.is_some() && mine == theirs
            });
        }
        let candidates: Vec<Option<String>> = match found.as_ref() {
            None | Some(Value::Null) => vec![None],
            Some(Value::Array(items)) => items.iter().map(text).collect(),
            Some(v) => vec![text(v)],
        };
        let one = |want: &Yaml| -> bool {
            candidates.iter().any(|have| match (want, have) {
                (Yaml::Null, None) => true,
                (Yaml::Null, Some(_)) | (_, None) => false,
                (want, Some(have)) => {
                    let want = match want {
                        Yaml::String(s) => s.clone(),
                        Yaml::Bool(b) => b.to_string(),
                        Yaml::Number(n) => n.to_string(),
                        other => panic!("value {other:?}"),
                    };
                    if m("re") {
                        return regex::Regex::new(&want).expect("regex").is_match(have);
                    }
                    let pattern = if m("contains") {
                        format!("*{want}*")
                    } else if m("startswith") {
                        format!("{want}*")
                    } else if m("endswith") {
                        format!("*{want}")
                    } else {
                        want
                    };
                    if m("cased") {
                        glob(&pattern, have)
                    } else {
                        glob(&pattern.to_lowercase(), &have.to_lowercase())
                    }
                }
            })
        };
        if m("all") {
            i.values.iter().all(one)
        } else {
            i.values.iter().any(one)
        }
    }

    #[test]
    fn wildcards_and_escapes() {
        assert!(glob("a*c", "abbc"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(glob("a\\*c", "a*c"));
        assert!(!glob("a\\*c", "abc"));
        assert!(glob("*", ""));
    }
}

/// The bundled SigmaHQ rules.
fn sigma_dir() -> PathBuf {
    root().join("rules/sigma")
}

fn sigma_rules() -> Vec<reference::Rule> {
    let dir = sigma_dir().join("cloud/aws/cloudtrail");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("rules")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| reference::Rule::parse(&std::fs::read_to_string(f).expect("rule")))
        .collect()
}

/// Every CloudTrail record of a file, as the spec's evaluator reads it
/// (gzip, a delivery object, an array, or one record per line); `None` for
/// a file that is not valid JSON.
fn records(path: &Path) -> Option<Vec<Value>> {
    let raw = std::fs::read(path).expect("read");
    let text = if path.extension().is_some_and(|x| x == "gz") {
        let mut out = String::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_string(&mut out)
            .ok()?;
        out
    } else {
        String::from_utf8(raw).ok()?
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(mut o)) => match o.remove("Records") {
            Some(Value::Array(records)) => Some(records),
            _ => Some(vec![Value::Object(o)]),
        },
        Ok(Value::Array(records)) => Some(records),
        Ok(_) => None,
        Err(_) => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).ok())
            .collect(),
    }
}

/// `(event id, rule id)` of every alert of the Sigma pack over `files`.
fn trailguard_matches(files: &[PathBuf]) -> BTreeSet<(String, String)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = trailguard(dir.path())
        .arg("run")
        .arg("--rules")
        .arg(common::modules_dir().join("rule-sigma.wasm"))
        .arg("--sigma")
        .arg(sigma_dir())
        .arg("--asn-db")
        .arg(fixture_mmdb())
        // Every record is evaluated: no deduplication (hand-written test
        // records repeat event ids), no time checks (the samples are
        // unrelated captures over ten years).
        .args([
            "--dedup-window",
            "0",
            "--max-time-jump",
            "0",
            "--max-future",
            "0",
        ])
        .args(files)
        .output()
        .expect("runs");
    assert!(matches!(out.status.code(), Some(0 | 3)), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("not loaded"),
        "every SigmaHQ rule loads: {}",
        stderr(&out)
    );
    // A Sigma rule's id is a UUID: the summary says which rule it is.
    for line in stderr(&out)
        .lines()
        .filter(|l| l.trim_start().starts_with("rule ") && l.contains("alert(s)"))
    {
        assert!(
            line.contains(" \u{2014} ") && !line.ends_with('\u{2014}'),
            "the summary names the rule's title: {line}"
        );
    }
    common::alerts(&out)
        .iter()
        .map(|a| {
            (
                a["event.id"].as_str().unwrap_or("").to_owned(),
                a["kibana.alert.rule.rule_id"]
                    .as_str()
                    .expect("rule id")
                    .to_owned(),
            )
        })
        .collect()
}

#[test]
fn sigmahq_rules_match_as_the_spec_says_on_every_shared_set() {
    let shared = root().join("../shared/data/cloudtrail");
    let mut sets: Vec<PathBuf> = vec![root().join("modules/s3-public-bucket/tests/data")];
    if shared.is_dir() {
        sets.extend(
            std::fs::read_dir(&shared)
                .expect("sets")
                .map(|e| e.expect("entry").path()),
        );
    } else {
        eprintln!("../shared/data/cloudtrail is not beside the repository: bundled fixtures only");
    }
    sets.sort();
    let rules = sigma_rules();
    assert_eq!(rules.len(), 57);
    let mut fired_rules = BTreeSet::new();
    for set in sets {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&set)
            .expect("set")
            .map(|e| e.expect("entry").path())
            .filter(|p| {
                let name = p.to_string_lossy();
                !name.contains(".labels.") && !name.ends_with(".md")
            })
            .collect();
        files.sort();
        let mut expected = BTreeSet::new();
        let mut known = BTreeSet::new();
        for file in &files {
            // A file that is not valid JSON is left to trailguard's
            // recovery; its records are not compared.
            for record in records(file).unwrap_or_default() {
                // Keys in any case, as trailguard reads them (Athena's
                // lower-case exports); records without a date (`eventTime`,
                // or a shipper's `@timestamp`) are rejected
                // by trailguard before any rule sees them.
                let field = |name: &str| {
                    reference::lookup(&record, name).and_then(|v| v.as_str().map(str::to_owned))
                };
                let Some(id) = field("eventID") else {
                    continue;
                };
                let dated = field("eventTime").or(field("@timestamp")).is_some_and(|t| {
                    t.len() >= 10 && t.as_bytes()[..4].iter().all(u8::is_ascii_digit)
                });
                if !dated {
                    continue;
                }
                let id = id.as_str();
                known.insert(id.to_owned());
                for rule in &rules {
                    if rule.matches(&record) {
                        expected.insert((id.to_owned(), rule.id.clone()));
                    }
                }
            }
        }
        let got: BTreeSet<(String, String)> = trailguard_matches(&files)
            .into_iter()
            .filter(|(event, _)| known.contains(event))
            .collect();
        let missing: Vec<_> = expected.difference(&got).collect();
        let extra: Vec<_> = got.difference(&expected).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{}: missed {missing:#?}, extra {extra:#?}",
            set.display()
        );
        eprintln!(
            "{}: {} matches of {} rules agree",
            set.display(),
            expected.len(),
            expected
                .iter()
                .map(|(_, r)| r)
                .collect::<BTreeSet<_>>()
                .len()
        );
        fired_rules.extend(expected.into_iter().map(|(_, r)| r));
    }
    eprintln!(
        "{} of 57 rules match something in the data",
        fired_rules.len()
    );
}

/// Every SigmaHQ rule on a hand-made record it must match and a near miss
/// it must not (`tests/data/sigma/cases.json`: the rules that match nothing
/// in the shared data are exercised too). trailguard and the spec's
/// evaluator agree on all of them, except where a case says why
/// trailguard cannot match (`expect_positive_fires: false`: a path through
/// an array, a policy held as a JSON string).
#[test]
fn every_sigmahq_rule_fires_on_its_positive_and_not_on_its_near_miss() {
    let text = std::fs::read_to_string(root().join("tests/data/sigma/cases.json")).expect("cases");
    let cases: Vec<Value> = serde_json::from_str(&text).expect("JSON");
    let rules = sigma_rules();
    assert_eq!(cases.len(), rules.len(), "one case per rule");
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("cases.ndjson");
    let mut lines = String::new();
    for case in &cases {
        for record in [&case["positive"], &case["near_miss"]] {
            lines.push_str(&record.to_string());
            lines.push('\n');
        }
    }
    std::fs::write(&input, lines).expect("write");
    let got = trailguard_matches(&[input]);
    let id = |record: &Value| record["eventID"].as_str().expect("eventID").to_owned();
    let mut covered = BTreeSet::new();
    for case in &cases {
        let rule_id = case["rule_id"].as_str().expect("rule_id");
        let rule = rules
            .iter()
            .find(|r| r.id == rule_id)
            .unwrap_or_else(|| panic!("no rule {rule_id}"));
        covered.insert(rule_id);
        let expect = case["expect_positive_fires"].as_bool().unwrap_or(true);
        let (positive, near) = (&case["positive"], &case["near_miss"]);
        assert!(
            rule.matches(positive) || !expect,
            "{rule_id}: the spec's evaluator matches the positive"
        );
        assert_eq!(
            got.contains(&(id(positive), rule_id.to_owned())),
            expect,
            "{rule_id}: trailguard on the positive ({})",
            case["limitation"].as_str().unwrap_or("expected to fire")
        );
        assert!(
            !rule.matches(near),
            "{rule_id}: the spec's evaluator does not match the near miss"
        );
        assert!(
            !got.contains(&(id(near), rule_id.to_owned())),
            "{rule_id}: trailguard does not fire on the near miss ({})",
            case["near_miss_why"].as_str().unwrap_or("")
        );
    }
    assert_eq!(covered.len(), rules.len(), "every rule has its case");
    // Whatever else fired on these records, the spec's evaluator agrees.
    let mut expected = BTreeSet::new();
    for case in &cases {
        for record in [&case["positive"], &case["near_miss"]] {
            for rule in &rules {
                if rule.matches(record) {
                    expected.insert((id(record), rule.id.clone()));
                }
            }
        }
    }
    let limited: BTreeSet<(String, String)> = cases
        .iter()
        .filter(|c| c["expect_positive_fires"] == Value::Bool(false))
        .map(|c| {
            (
                id(&c["positive"]),
                c["rule_id"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expected: BTreeSet<_> = expected.difference(&limited).cloned().collect();
    assert_eq!(got, expected);
}

/// What `--sigma` reads is bounded like a component: regular files only
/// (a `.yml` name on a device is refused, by link too), at most 1 MiB each,
/// UTF-8; each refusal names the file.
#[test]
fn sigma_rule_files_are_read_within_their_limits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let list = |path: &Path| {
        trailguard(dir.path())
            .args(["rules", "list", "--rules"])
            .arg(common::modules_dir().join("rule-sigma.wasm"))
            .arg("--sigma")
            .arg(path)
            .output()
            .expect("runs")
    };
    // A directory holding a link to a device named like a rule.
    let devices = dir.path().join("devices");
    std::fs::create_dir(&devices).expect("mkdir");
    std::os::unix::fs::symlink("/dev/zero", devices.join("zero.yml")).expect("symlink");
    let out = list(&devices);
    assert!(!out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("zero.yml") && stderr(&out).contains("device"),
        "{}",
        stderr(&out)
    );
    // Over 1 MiB.
    let big = dir.path().join("big.yml");
    std::fs::write(&big, "#".repeat((1 << 20) + 1)).expect("write");
    let out = list(&big);
    assert!(!out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("big.yml"), "{}", stderr(&out));
    // Not UTF-8.
    let latin = dir.path().join("latin1.yaml");
    std::fs::write(&latin, b"title: caf\xe9\n").expect("write");
    let out = list(&latin);
    assert!(!out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("latin1.yaml is not UTF-8"),
        "{}",
        stderr(&out)
    );
    // The bundled rules list, each Sigma rule under the pack.
    let out = list(&sigma_dir());
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("77caf516-34e5-4df9-b4db-20744fea0a60")
            && text.contains("AWS Successful Console Login Without MFA"),
        "{text}"
    );
}

/// `sigma check`: every bundled rule loads; a rule that cannot is named
/// with its file and line; with a sample, a field no event has is named.
#[test]
fn sigma_check_lists_rules_and_fields_and_lints_against_a_sample() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let check = |args: &[&std::ffi::OsStr]| {
        let out = trailguard(d)
            .args(["sigma", "check", "--pack"])
            .arg(common::modules_dir().join("rule-sigma.wasm"))
            .args(args)
            .output()
            .expect("runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, text) = check(&[sigma_dir().as_os_str()]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("57 files, 57 rules loaded, 0 left out"),
        "{text}"
    );
    assert!(
        text.contains("aws_cloudtrail_console_login_success_without_mfa.yml")
            && text.contains(
                "reads: additionalEventData.MFAUsed, eventName, responseElements.ConsoleLogin"
            ),
        "{text}"
    );

    let rules = d.join("mine");
    std::fs::create_dir(&rules).expect("mkdir");
    std::fs::write(
        rules.join("a.yml"),
        "title: Bucket made public\nid: mine-1\nlogsource:\n    product: aws\n    service: cloudtrail\ndetection:\n    selection:\n        eventName: PutBucketAcl\n        requestParameters.bucketNmae: '*'\n    condition: selection\nlevel: high\n",
    )
    .expect("write");
    std::fs::write(
        rules.join("b.yml"),
        "title: Windows rule\nid: mine-2\nlogsource:\n    product: windows\ndetection:\n    selection:\n        EventID: 4688\n    condition: selection\n",
    )
    .expect("write");
    let (code, text) = check(&[rules.as_os_str()]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("b.yml:2: rule \"Windows rule\" not loaded: its logsource (product windows"),
        "{text}"
    );
    assert!(
        text.contains("2 files, 1 rules loaded, 1 left out"),
        "{text}"
    );

    // The sample has PutBucketAcl records; none has `bucketNmae`.
    std::fs::remove_file(rules.join("b.yml")).expect("rm");
    let sample = root().join("modules/s3-public-bucket/tests/data");
    let (code, text) = check(&[
        std::ffi::OsStr::new("--sample"),
        sample.as_os_str(),
        rules.as_os_str(),
    ]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("never in the sample: requestParameters.bucketNmae"),
        "{text}"
    );
    assert!(!text.contains("never in the sample: eventName"), "{text}");
    std::fs::write(
        rules.join("a.yml"),
        std::fs::read_to_string(rules.join("a.yml"))
            .expect("read")
            .replace("bucketNmae", "bucketName"),
    )
    .expect("write");
    let (code, text) = check(&[
        std::ffi::OsStr::new("--sample"),
        sample.as_os_str(),
        rules.as_os_str(),
    ]);
    assert_eq!(code, Some(0), "{text}");
}

/// A hostile set of Sigma rules (a thousand regular expressions over a
/// long field, every event) makes the pack overrun its CPU time per call:
/// the host stops it and quarantines it, and the other rules' alerts are
/// those of a run without it.
#[test]
fn sigma_rules_that_exhaust_the_cpu_limit_stop_only_the_pack() {
    use trailguard_gen::{StolenCiCredentials, write_deliveries};
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let input = d.join("input");
    std::fs::create_dir(&input).expect("mkdir");
    let calls: Vec<_> = StolenCiCredentials::default()
        .calls()
        .into_iter()
        .map(|mut c| {
            c.user_agent = "x".repeat(60_000);
            c
        })
        .collect();
    write_deliveries(&input, &calls, 50).expect("write");
    let rules = d.join("slow");
    std::fs::create_dir(&rules).expect("mkdir");
    for file in 0..2 {
        let mut text = String::new();
        for i in 0..500 {
            if i > 0 {
                text.push_str("---\n");
            }
            text.push_str(&format!(
                "title: Slow {file}-{i}\nid: slow-{file}-{i}\nlogsource: {{product: aws, service: cloudtrail}}\ndetection:\n    s:\n        userAgent|re: '[a-w]{{{}}}[0-9]'\n    condition: s\n",
                3 + i % 7
            ));
        }
        std::fs::write(rules.join(format!("slow-{file}.yml")), text).expect("write");
    }
    let config = d.join("limits.toml");
    std::fs::write(&config, "[run]\ncall_timeout_ms = 300\n").expect("write");
    let rule_a = common::modules_dir().join("rule-sensitive-untrusted-asn.wasm");
    let run = |with_pack: bool| {
        let mut rules_arg = rule_a.display().to_string();
        let mut cmd = trailguard(d);
        cmd.arg("run").arg("--config").arg(&config);
        if with_pack {
            rules_arg.push(':');
            rules_arg.push_str(
                &common::modules_dir()
                    .join("rule-sigma.wasm")
                    .display()
                    .to_string(),
            );
            cmd.arg("--sigma").arg(&rules);
        }
        cmd.arg("--rules")
            .arg(rules_arg)
            .arg("--asn-db")
            .arg(fixture_mmdb())
            .args(["--batch-size", "50"])
            .arg(&input)
            .output()
            .expect("runs")
    };
    let clean = run(false);
    assert_eq!(clean.status.code(), Some(0), "{}", stderr(&clean));
    let hostile = run(true);
    let log = stderr(&hostile);
    assert_eq!(hostile.status.code(), Some(2), "{log}");
    assert!(
        log.contains("took longer than the limit of 0.300 s") && log.contains("QUARANTINED"),
        "{log}"
    );
    let rule_a_lines = |out: &std::process::Output| -> Vec<String> {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("\"kibana.alert.rule.rule_id\":\"aws-sensitive-untrusted-asn\""))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(rule_a_lines(&hostile), rule_a_lines(&clean));
    assert_eq!(rule_a_lines(&clean).len(), 1);
}
