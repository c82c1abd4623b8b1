//! Project automation, in Rust (see ARCHITECTURE.md).
//!
//! `cargo xtask build`: builds the release CLI and every rule in `modules/`
//! for wasm32-unknown-unknown, turns each core module into a component
//! in-process, refuses any component that imports something, and writes
//! them to `target/modules/`. Benchmark guests (`benches/guests/`) go the
//! same way into `target/bench-components/`, test guests (`tests/guests/`)
//! into `target/test-components/`.
//!
//! `cargo xtask asn`: builds `target/asn/asn.mmdb` from the ip-location-db
//! package (a local `.tgz`, or fetched with `npm pack`).
//!
//! `cargo xtask demo`: `build` + `asn`, then runs `trailguard run` on the
//! public CloudTrail samples in `../shared/data/cloudtrail` (when present)
//! and a generated stolen-credentials scenario.
//!
//! `cargo xtask tools`: installs the tools the tests need that are not
//! Rust crates of the workspace: the nisshi Kafka-protocol broker (for
//! tests/kafka.rs) into `.tools/`, unless it is there already; a build is
//! kept in the user's cache (`~/.cache/trailguard/`) for later clones.
//!
//! `cargo xtask test`: `tools` and `build`, then formatting, clippy and
//! every test.
//!
//! `cargo xtask memcheck`: peak memory of `trailguard run` on 1M and 4M
//! generated events; it must not grow with the input.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root()?;
    match args.first().map(String::as_str) {
        Some("build") => build(&root).map(|_| ()),
        Some("asn") => asn(&root).map(|_| ()),
        Some("demo") => demo(&root),
        Some("test") => test(&root),
        Some("tools") => tools(&root),
        Some("memcheck") => memcheck(&root),
        _ => {
            eprintln!("usage: cargo xtask <build | asn | demo | test>");
            eprintln!("  build  release CLI + every rule component into target/modules/");
            eprintln!("  asn    target/asn/asn.mmdb from the ip-location-db ASN data");
            eprintln!("  demo   build + asn, then run trailguard on sample CloudTrail data");
            eprintln!("  tools  the nisshi Kafka broker for the tests, into .tools/ (once)");
            eprintln!("  test   tools + build, then cargo fmt --check, clippy, and every test");
            eprintln!("  memcheck  peak RSS of a run on 1M and 4M generated events");
            std::process::exit(2);
        }
    }
}

fn workspace_root() -> Result<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    Ok(manifest
        .parent()
        .context("xtask lives inside the workspace")?
        .to_owned())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    ensure!(status.success(), "{cmd:?} failed with {status}");
    Ok(())
}

/// Every crate under `dir`: (package name, directory).
fn guest_crates(root: &Path, dir: &str) -> Result<Vec<(String, PathBuf)>> {
    let mut crates = Vec::new();
    for entry in std::fs::read_dir(root.join(dir))? {
        let dir = entry?.path();
        let manifest = dir.join("Cargo.toml");
        if !manifest.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&manifest)?;
        let name = text
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("name = \"")
                    .and_then(|r| r.strip_suffix('"'))
            })
            .with_context(|| format!("{} has no package name", manifest.display()))?;
        crates.push((name.to_owned(), dir));
    }
    crates.sort();
    Ok(crates)
}

/// Builds the CLI and the rule components; returns the component paths.
fn build(root: &Path) -> Result<Vec<PathBuf>> {
    run(cargo()
        .current_dir(root)
        .args(["build", "--release", "--package", "trailguard"]))?;
    let rules = guest_crates(root, "modules")?;
    ensure!(!rules.is_empty(), "no rule crates under modules/");
    let probes = guest_crates(root, "benches/guests")?;
    let test_guests = guest_crates(root, "tests/guests")?;
    ensure_target(root, "rustc".as_ref(), "rustup".as_ref())?;
    let mut wasm = cargo();
    wasm.current_dir(root).args([
        "build",
        "--target",
        "wasm32-unknown-unknown",
        "--profile",
        "wasm",
    ]);
    for (name, _) in rules.iter().chain(&probes).chain(&test_guests) {
        wasm.args(["--package", name]);
    }
    run(&mut wasm)?;
    let written = componentize(root, &rules, "target/modules")?;
    componentize(root, &probes, "target/bench-components")?;
    componentize(root, &test_guests, "target/test-components")?;
    Ok(written)
}

/// The target rules are compiled for.
const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Adds [`WASM_TARGET`] to the toolchain when it is missing, and says so:
/// rust-toolchain.toml names it, but rustup installs a named target only
/// when it installs the toolchain itself, and not at all with
/// `RUSTUP_AUTO_INSTALL=0`. Returns whether it had to add it.
fn ensure_target(root: &Path, rustc: &std::ffi::OsStr, rustup: &std::ffi::OsStr) -> Result<bool> {
    let output = Command::new(rustc)
        .current_dir(root)
        .args(["--print", "target-libdir", "--target", WASM_TARGET])
        .output()
        .with_context(|| format!("cannot run {}", rustc.display()))?;
    ensure!(
        output.status.success(),
        "{} --print target-libdir failed: {}",
        rustc.display(),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    let libdir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    if has_rlib(&libdir, "libcore-") {
        return Ok(false);
    }
    println!(
        "the {WASM_TARGET} target is not installed for this toolchain: adding it (rustup target add {WASM_TARGET})"
    );
    run(Command::new(rustup)
        .current_dir(root)
        .args(["target", "add", WASM_TARGET]))
    .with_context(|| {
        format!("the rules need the {WASM_TARGET} target; add it with `rustup target add {WASM_TARGET}` (or your toolchain manager's equivalent) and run again")
    })?;
    Ok(true)
}

/// Whether `dir` holds a `.rlib` whose name starts with `prefix`.
fn has_rlib(dir: &Path, prefix: &str) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.filter_map(Result::ok).any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with(prefix) && name.ends_with(".rlib")
        })
    })
}

/// Turns the built core modules of `crates` into components in `out`.
fn componentize(root: &Path, crates: &[(String, PathBuf)], out: &str) -> Result<Vec<PathBuf>> {
    let out_dir = root.join(out);
    std::fs::create_dir_all(&out_dir)?;
    let mut written = Vec::new();
    for (name, _) in crates {
        let file = name.replace('-', "_");
        let core = root.join(format!("target/wasm32-unknown-unknown/wasm/{file}.wasm"));
        let module =
            std::fs::read(&core).with_context(|| format!("cannot read {}", core.display()))?;
        let component = wit_component::ComponentEncoder::default()
            .module(&module)
            .with_context(|| format!("{name}: not a module wit-component can read"))?
            .validate(true)
            .encode()
            .with_context(|| format!("{name}: cannot be turned into a component"))?;
        let imports = component_imports(&component)?;
        if !imports.is_empty() {
            bail!(
                "{name} imports {}; a rule must import nothing. Remove the dependency that needs it (WASI, a clock, randomness)",
                imports.join(", ")
            );
        }
        let target = out_dir.join(format!("{name}.wasm"));
        std::fs::write(&target, &component)?;
        println!(
            "component {} ({} bytes, 0 imports)",
            target.display(),
            component.len()
        );
        written.push(target);
    }
    Ok(written)
}

/// Names of a component's top-level imports.
fn component_imports(component: &[u8]) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        match payload? {
            wasmparser::Payload::ModuleSection { .. }
            | wasmparser::Payload::ComponentSection { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            wasmparser::Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    names.push(import?.name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    Ok(names)
}

/// The ip-location-db ASN package: ../shared's copy, or `npm pack`.
fn asn_package(root: &Path, work: &Path) -> Result<PathBuf> {
    let shared = root.join("../shared/data/asn");
    if let Ok(entries) = std::fs::read_dir(&shared) {
        let mut tgz: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "tgz"))
            .collect();
        tgz.sort();
        if let Some(found) = tgz.pop() {
            return Ok(found);
        }
    }
    println!(
        "no ASN package in {}; fetching @ip-location-db/asn with npm",
        shared.display()
    );
    let output = Command::new("npm")
        .current_dir(work)
        .args(["pack", "--silent", "@ip-location-db/asn"])
        .output()
        .context("cannot run npm (install Node.js, or put the .tgz in ../shared/data/asn)")?;
    ensure!(
        output.status.success(),
        "npm pack failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let name = String::from_utf8(output.stdout)?.trim().to_owned();
    Ok(work.join(name))
}

/// Builds `target/asn/asn.mmdb` unless it exists; returns its path.
fn asn(root: &Path) -> Result<PathBuf> {
    let dir = root.join("target/asn");
    let mmdb = dir.join("asn.mmdb");
    if mmdb.is_file() {
        println!("ASN database {} exists", mmdb.display());
        return Ok(mmdb);
    }
    std::fs::create_dir_all(&dir)?;
    let package = asn_package(root, &dir)?;
    run(Command::new("tar")
        .current_dir(&dir)
        .arg("xzf")
        .arg(&package))?;
    let cli = root.join("target/release/trailguard");
    if !cli.is_file() {
        run(cargo()
            .current_dir(root)
            .args(["build", "--release", "--package", "trailguard"]))?;
    }
    run(Command::new(&cli)
        .args(["asn", "import", "--ipv4"])
        .arg(dir.join("package/asn-ipv4.csv"))
        .arg("--ipv6")
        .arg(dir.join("package/asn-ipv6.csv"))
        .arg("-o")
        .arg(&mmdb))?;
    for license in [
        "DBIP-LICENSE",
        "ROUTEVIEWS-LICENSE",
        "NRO_LICENSE",
        "MODIFICATIONS",
    ] {
        let _ = std::fs::copy(dir.join("package").join(license), dir.join(license));
    }
    Ok(mmdb)
}

/// The nisshi version the Kafka tests run against.
const NISSHI_VERSION: &str = "0.8.1";

/// Where a built nisshi is kept for the next clone on this machine:
/// `$XDG_CACHE_HOME` (or `~/.cache`)`/trailguard/nisshi-VERSION`, as cargo
/// keeps its registry in `~/.cargo`. `None` without a home.
fn tool_cache() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var_os("HOME")?).join(".cache"),
    };
    Some(
        base.join("trailguard")
            .join(format!("nisshi-{NISSHI_VERSION}")),
    )
}

/// Whether `binary` runs and says it is [`NISSHI_VERSION`].
fn is_nisshi(binary: &Path) -> bool {
    Command::new(binary)
        .arg("--version")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains(NISSHI_VERSION))
}

/// Copies an executable, creating the directory it goes in.
fn copy_tool(from: &Path, to: &Path) -> Result<()> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::copy(from, to)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    Ok(())
}

fn tools(root: &Path) -> Result<()> {
    let nisshi = root.join(".tools/bin/nisshi");
    let cached = tool_cache().map(|dir| dir.join("bin/nisshi"));
    if is_nisshi(&nisshi) {
        println!("nisshi {NISSHI_VERSION} already in {}", nisshi.display());
    } else if let Some(cached) = cached.as_ref().filter(|c| is_nisshi(c)) {
        println!(
            "nisshi {NISSHI_VERSION}: copying the build kept in {}",
            cached.display()
        );
        copy_tool(cached, &nisshi)?;
    } else {
        println!(
            "installing nisshi {NISSHI_VERSION} (a Kafka-protocol broker for the tests) into .tools/; 10 to 25 minutes, once per machine"
        );
        // A test tool, not the thing measured: optimized a little (opt-level
        // 1, no debug info), to spend less of CI building it (11 minutes on a
        // 2-core machine).
        run(cargo()
            .current_dir(root)
            .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "1")
            .env("CARGO_PROFILE_RELEASE_DEBUG", "0")
            .args([
                "install",
                "nisshi",
                "--version",
                NISSHI_VERSION,
                "--locked",
                "--ignore-rust-version",
                "--no-default-features",
                "--features",
                "dynostore",
                "--root",
                ".tools",
            ]))?;
    }
    // Kept for the next clone; a cache that cannot be written costs only
    // the next build.
    if let Some(cached) = cached.filter(|c| !is_nisshi(c)) {
        match copy_tool(&nisshi, &cached) {
            Ok(()) => println!("kept a copy of nisshi in {}", cached.display()),
            Err(e) => println!("note: nisshi not kept for later clones: {e:#}"),
        }
    }
    Ok(())
}

fn test(root: &Path) -> Result<()> {
    tools(root)?;
    // The report tests render pages in a real headless browser.
    ensure!(
        [
            "/usr/bin/chromium",
            "/usr/bin/chromium-browser",
            "/usr/bin/google-chrome"
        ]
        .iter()
        .any(|p| Path::new(p).is_file()),
        "the tests need a headless Chromium to render the HTML report: `sudo apt-get install chromium` (.ci/run does it)"
    );
    run(cargo()
        .current_dir(root)
        .args(["fmt", "--all", "--", "--check"]))?;
    build(root)?;
    run(cargo().current_dir(root).args([
        "clippy",
        "--release",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo()
        .current_dir(root)
        .args(["test", "--release", "--workspace"]))
}

/// Writes `events` generated records as NDJSON, in time order:
/// stolen-credentials scenarios for 500 CI roles, one after the other.
/// Writes `events` generated records to `path`, whole or not at all (an
/// interrupted run leaves no half file to be measured next time).
fn generate(path: &Path, events: usize) -> Result<()> {
    use std::io::Write;
    let partial = path.with_extension("partial");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&partial)?);
    let mut written = 0;
    let mut i = 0i64;
    while written < events {
        let scenario = trailguard_gen::StolenCiCredentials {
            role: format!("ci-{}", i % 500),
            // Each scenario spans 3 days before its attack: the next one
            // starts after it, so the file is in time order.
            attack_ms: trailguard_gen::StolenCiCredentials::default().attack_ms
                + i * 73 * trailguard_gen::HOUR_MS,
            ..trailguard_gen::StolenCiCredentials::default()
        };
        for call in scenario.calls().iter().take(events - written) {
            let mut record = call.to_json();
            // Unique ids across scenarios.
            record["eventID"] = format!("{}-{i}", call.event_id()).into();
            serde_json::to_writer(&mut out, &record)?;
            out.write_all(b"\n")?;
            written += 1;
        }
        i += 1;
    }
    out.flush()?;
    drop(out);
    std::fs::rename(&partial, path)?;
    Ok(())
}

fn memcheck(root: &Path) -> Result<()> {
    build(root)?;
    let dir = root.join("target/memcheck");
    std::fs::create_dir_all(&dir)?;
    let mut peaks = Vec::new();
    for events in [1_000_000usize, 4_000_000] {
        let input = dir.join(format!("{events}.ndjson"));
        if !input.is_file() {
            println!("generating {events} events into {}", input.display());
            generate(&input, events)?;
        }
        let stats = dir.join(format!("{events}.stats.json"));
        let status = Command::new(root.join("target/release/trailguard"))
            .arg("run")
            .arg("--asn-db")
            .arg(root.join("tests/data/asn/asn-fixture.mmdb"))
            .arg("--stats")
            .arg(&stats)
            // Generated traffic runs up to now and past it: not the
            // clock check's business here.
            .args(["--max-future", "0"])
            .arg("-o")
            .arg(dir.join("alerts.ndjson"))
            .arg(&input)
            .status()?;
        // Every record must be read: a run that rejects them would measure
        // less than the input.
        ensure!(status.success(), "trailguard failed with {status}");
        let s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&stats)?)?;
        let peak = s["peak_rss_bytes"]
            .as_u64()
            .context("no peak_rss_bytes in stats")?;
        println!(
            "{events} events: peak RSS {:.1} MiB, {:.0} events/s, {} bytes of input",
            peak as f64 / 1048576.0,
            s["events_per_second"].as_f64().unwrap_or_default(),
            std::fs::metadata(&input)?.len()
        );
        peaks.push(peak);
    }
    let growth = peaks[1] as f64 / peaks[0] as f64;
    println!("peak RSS 4M / 1M = {growth:.2}");
    ensure!(
        growth < 1.25,
        "peak memory grows with the input ({growth:.2}x for 4x the events)"
    );
    Ok(())
}

fn demo(root: &Path) -> Result<()> {
    build(root)?;
    let mmdb = asn(root)?;
    let mut inputs = Vec::new();
    let shared = root.join("../shared/data/cloudtrail");
    if shared.is_dir() {
        // Every sample set, minus files that are not CloudTrail (test labels).
        for entry in std::fs::read_dir(&shared)? {
            let dir = entry?.path();
            for file in std::fs::read_dir(&dir)? {
                let file = file?.path();
                if !file.to_string_lossy().contains(".labels.") {
                    inputs.push(file);
                }
            }
        }
        inputs.sort();
    }
    let generated = root.join("target/demo/stolen-ci-credentials");
    if generated.is_dir() {
        std::fs::remove_dir_all(&generated)?;
    }
    std::fs::create_dir_all(&generated)?;
    let calls = trailguard_gen::StolenCiCredentials::long_history().calls();
    trailguard_gen::write_deliveries(&generated, &calls, 50)?;
    println!(
        "generated {} CloudTrail records in {}",
        calls.len(),
        generated.display()
    );
    inputs.push(generated);
    let out = root.join("target/demo/alerts.ndjson");
    let report = root.join("target/demo/report.html");
    let mut trailguard = Command::new(root.join("target/release/trailguard"));
    trailguard
        .arg("run")
        .arg("--asn-db")
        .arg(&mmdb)
        .arg("-o")
        .arg(&out)
        .arg("--report")
        .arg(&report)
        // The samples are unrelated captures from 2014 to 2024, in file
        // name order, not one stream: the stream-time guard would hold and
        // refuse their jumps back and forth (the wall-clock check stays).
        .args(["--max-time-jump", "0"])
        // SigmaHQ's 57 CloudTrail rules, run by the `sigma` rule pack.
        .arg("--sigma")
        .arg(root.join("rules/sigma"))
        .args(&inputs);
    let status = trailguard
        .status()
        .with_context(|| format!("cannot run {trailguard:?}"))?;
    // 3: completed, with rejected records (the public samples have some).
    ensure!(
        matches!(status.code(), Some(0 | 3)),
        "{trailguard:?} failed with {status}"
    );
    println!("\nalerts written to {}:", out.display());
    print!("{}", std::fs::read_to_string(&out)?);
    println!(
        "\nthe same alerts as a page, with each identity's timeline: {}",
        report.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// A directory of its own under the system's temporary directory.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        dir
    }

    /// An executable shell script.
    fn script(path: &Path, body: &str) {
        std::fs::write(path, format!("#!/bin/sh\n{body}\n")).expect("script");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    /// Stand-ins for rustc and rustup: rustc prints `libdir`, rustup logs
    /// its arguments (and fails when `fail`).
    fn toolchain(dir: &Path, libdir: &Path, fail: bool) -> (PathBuf, PathBuf, PathBuf) {
        let (rustc, rustup, log) = (dir.join("rustc"), dir.join("rustup"), dir.join("log"));
        script(&rustc, &format!("echo '{}'", libdir.display()));
        let exit = if fail { "exit 1" } else { "exit 0" };
        script(
            &rustup,
            &format!("echo \"$@\" >> '{}'\n{exit}", log.display()),
        );
        (rustc, rustup, log)
    }

    #[test]
    fn a_missing_wasm_target_is_added() {
        let dir = scratch("missing");
        let libdir = dir.join("lib"); // never created: the target is absent
        let (rustc, rustup, log) = toolchain(&dir, &libdir, false);
        let added = ensure_target(&dir, rustc.as_os_str(), rustup.as_os_str()).expect("added");
        assert!(added);
        let calls = std::fs::read_to_string(&log).expect("rustup was called");
        assert_eq!(calls.trim(), "target add wasm32-unknown-unknown");
    }

    #[test]
    fn an_installed_wasm_target_is_left_alone() {
        let dir = scratch("installed");
        let libdir = dir.join("lib");
        std::fs::create_dir_all(&libdir).expect("libdir");
        std::fs::write(libdir.join("libcore-0123abcd.rlib"), b"").expect("rlib");
        let (rustc, rustup, log) = toolchain(&dir, &libdir, false);
        let added = ensure_target(&dir, rustc.as_os_str(), rustup.as_os_str()).expect("ok");
        assert!(!added);
        assert!(!log.exists(), "rustup was called for an installed target");
    }

    #[test]
    fn a_target_that_cannot_be_added_says_what_to_do() {
        let dir = scratch("unavailable");
        let (rustc, rustup, _) = toolchain(&dir, &dir.join("lib"), true);
        let error =
            ensure_target(&dir, rustc.as_os_str(), rustup.as_os_str()).expect_err("rustup failed");
        let message = format!("{error:#}");
        assert!(
            message.contains("rustup target add wasm32-unknown-unknown"),
            "{message}"
        );
    }
}
