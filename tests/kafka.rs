//! Scale-out on Kafka end to end: a real Kafka-protocol broker (nisshi,
//! installed by `cargo xtask tools` into `.tools/`), `trailguard publish`
//! to a 6-partition topic, three `trailguard run --kafka-brokers` workers
//! in one consumer group; their alerts together must be exactly the alerts
//! of a single-process run on the same events, also when one worker dies
//! mid-run.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{fixture_mmdb, generate, modules_dir, run, stderr, trailguard};

/// The broker binary.
fn nisshi() -> PathBuf {
    let local = common::root().join(".tools/bin/nisshi");
    assert!(
        local.is_file(),
        "the Kafka tests need the nisshi broker: run `cargo xtask tools` (installs nisshi 0.8.1 into .tools/, about 10 minutes once)"
    );
    local
}

/// A broker on a free port, killed on drop.
struct Broker {
    child: Child,
    address: String,
}

impl Broker {
    fn start(dir: &Path) -> Broker {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let address = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(dir.join("broker.log")).expect("log");
        let child = Command::new(nisshi())
            .arg("broker")
            .args(["--listener-url", &format!("tcp://{address}")])
            .args(["--advertised-listener-url", &format!("tcp://{address}")])
            .args(["--storage-engine", "memory://nisshi/"])
            .args(["--group-initial-rebalance-delay", "100ms"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nisshi starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&address).is_err() {
            assert!(
                Instant::now() < deadline,
                "nisshi did not listen on {address}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Broker { child, address }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Alert ids (and the documents) in NDJSON files.
fn alerts_in(files: &[PathBuf]) -> (Vec<String>, BTreeMap<String, serde_json::Value>) {
    let mut ids = Vec::new();
    let mut docs = BTreeMap::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines() {
            // A worker killed mid-write may leave a torn last line.
            let Ok(doc) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let id = doc["kibana.alert.uuid"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            ids.push(id.clone());
            docs.insert(id, doc);
        }
    }
    (ids, docs)
}

struct Scenario {
    dir: tempfile::TempDir,
    broker: Broker,
    topic: String,
    expected: BTreeMap<String, serde_json::Value>,
}

/// A multi-day generated scenario with attacks, its single-process alerts,
/// and its events published to a 6-partition topic.
fn scenario(topic: &str) -> Scenario {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let broker = Broker::start(d);
    let (input, truth) = generate(d, 60_000, 4);
    let single = run(d, &[&input], &[]);
    assert!(single.status.success(), "{}", stderr(&single));
    let single_file = d.join("single.ndjson");
    std::fs::write(&single_file, &single.stdout).expect("write");
    let (ids, expected) = alerts_in(&[single_file]);
    assert_eq!(ids.len(), expected.len(), "ids are unique");
    assert!(
        expected.len() >= 2 * truth.len(),
        "both rules alert per attack"
    );

    let out = trailguard(d)
        .args([
            "publish",
            "--brokers",
            &broker.address,
            "--topic",
            topic,
            "--partitions",
            "6",
        ])
        .arg("--asn-db")
        .arg(fixture_mmdb())
        .arg(&input)
        .output()
        .expect("publish runs");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("published 60000 event(s)"),
        "{}",
        stderr(&out)
    );
    Scenario {
        dir,
        broker,
        topic: topic.to_owned(),
        expected,
    }
}

/// `trailguard run` consuming the scenario's topic in consumer group `group`.
fn consumer(s: &Scenario, group: &str) -> Command {
    let mut cmd = trailguard(s.dir.path());
    cmd.arg("run").arg("--rules").arg(modules_dir()).args([
        "--kafka-brokers",
        &s.broker.address,
        "--topic",
        &s.topic,
        "--group",
        group,
    ]);
    cmd
}

fn worker(s: &Scenario, group: &str, n: usize, abort_after: Option<u64>) -> Child {
    let d = s.dir.path();
    let mut cmd = consumer(s, group);
    cmd.args([
        "--session-timeout-ms",
        "6000",
        "--checkpoint-events",
        "1500",
    ])
    .arg("-o")
    .arg(d.join(format!("{group}-{n}.ndjson")))
    .arg("--stats")
    .arg(d.join(format!("{group}-{n}.stats.json")))
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(d.join(format!("{group}-{n}.log"))).expect("log"));
    match abort_after {
        Some(events) => cmd.env("TRAILGUARD_TEST_ABORT_AFTER_EVENTS", events.to_string()),
        None => cmd.env_remove("TRAILGUARD_TEST_ABORT_AFTER_EVENTS"),
    };
    cmd.spawn().expect("worker starts")
}

/// Waits until the workers' alerts include every expected one (and a
/// moment more, to catch extras), or the deadline.
fn wait_for_alerts(s: &Scenario, group: &str, deadline: Duration) -> Vec<PathBuf> {
    let files: Vec<PathBuf> = (0..3)
        .map(|n| s.dir.path().join(format!("{group}-{n}.ndjson")))
        .collect();
    let start = Instant::now();
    loop {
        let (_, docs) = alerts_in(&files);
        if s.expected.keys().all(|id| docs.contains_key(id)) {
            std::thread::sleep(Duration::from_secs(2));
            return files;
        }
        if start.elapsed() > deadline {
            return files;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every message of `topic`: (key, JSON payload).
fn read_topic(brokers: &str, topic: &str) -> Vec<(String, serde_json::Value)> {
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    let Some(partitions) = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| t.partitions().len() as i32)
    else {
        return Vec::new();
    };
    let mut list = rdkafka::TopicPartitionList::new();
    let mut end = 0;
    for p in 0..partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .expect("watermarks");
        end += high - low;
        list.add_partition_offset(topic, p, rdkafka::Offset::Offset(low))
            .expect("offset");
    }
    consumer.assign(&list).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while (out.len() as i64) < end && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
            let doc = serde_json::from_slice(m.payload().unwrap_or_default()).expect("JSON alert");
            out.push((key, doc));
        }
    }
    out
}

fn stop(workers: &mut [Child]) {
    for w in workers.iter() {
        // SIGTERM: checkpoint and leave the group.
        let _ = Command::new("kill").arg(w.id().to_string()).status();
    }
    for w in workers.iter_mut() {
        let _ = w.wait();
    }
}

fn logs(s: &Scenario, group: &str) -> String {
    (0..3)
        .map(|n| {
            std::fs::read_to_string(s.dir.path().join(format!("{group}-{n}.log")))
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("\n---\n")
}

/// Partitions each surviving worker processed, from its --stats.
fn partitions_of(s: &Scenario, group: &str, n: usize) -> BTreeMap<String, serde_json::Value> {
    let text = std::fs::read_to_string(s.dir.path().join(format!("{group}-{n}.stats.json")))
        .unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["partitions"].as_object().cloned())
        .map(|m| m.into_iter().collect())
        .unwrap_or_default()
}

#[test]
fn kafka_workers_together_equal_one_process_even_when_one_dies() {
    let s = scenario("cloudtrail");

    // Three workers, one group, six partitions.
    let mut workers: Vec<Child> = (0..3).map(|n| worker(&s, "all-live", n, None)).collect();
    let files = wait_for_alerts(&s, "all-live", Duration::from_secs(90));
    stop(&mut workers);
    let (ids, docs) = alerts_in(&files);
    let got: BTreeSet<&String> = docs.keys().collect();
    let want: BTreeSet<&String> = s.expected.keys().collect();
    assert_eq!(got, want, "{}", logs(&s, "all-live"));
    assert_eq!(ids.len(), docs.len(), "no alert written twice");
    for (id, doc) in &docs {
        assert_eq!(doc, &s.expected[id], "the same alert, field for field");
    }
    let mut owners = 0;
    let mut partitions = BTreeSet::new();
    for n in 0..3 {
        let owned = partitions_of(&s, "all-live", n);
        owners += usize::from(!owned.is_empty());
        partitions.extend(owned.into_keys());
    }
    assert_eq!(partitions.len(), 6, "every partition was processed");
    assert_eq!(
        owners,
        3,
        "all three workers had partitions: {}",
        logs(&s, "all-live")
    );

    // One worker writing its alerts to a topic, keyed by alert id.
    let d = s.dir.path();
    let mut to_topic = consumer(&s, "to-topic")
        .args(["--alerts-topic", "alerts"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(d.join("to-topic.log")).expect("log"))
        .spawn()
        .expect("worker starts");
    let start = Instant::now();
    let mut messages = Vec::new();
    while start.elapsed() < Duration::from_secs(90) {
        messages = read_topic(&s.broker.address, "alerts");
        if messages.len() >= s.expected.len() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    stop(std::slice::from_mut(&mut to_topic));
    let on_topic: BTreeMap<String, serde_json::Value> = messages
        .into_iter()
        .map(|(key, doc)| {
            assert_eq!(
                doc["kibana.alert.uuid"],
                key.as_str(),
                "keyed by the alert id"
            );
            (key, doc)
        })
        .collect();
    assert_eq!(
        on_topic.keys().collect::<BTreeSet<_>>(),
        want,
        "{}",
        std::fs::read_to_string(d.join("to-topic.log")).unwrap_or_default()
    );

    // Again in a new group, and worker 0 dies (aborts, as a SIGKILL: no
    // checkpoint, no commit, no goodbye) after 7000 events; the others take
    // its partitions over from their last checkpoints.
    let mut workers: Vec<Child> = (0..3)
        .map(|n| worker(&s, "one-dies", n, (n == 0).then_some(7_000)))
        .collect();
    let files = wait_for_alerts(&s, "one-dies", Duration::from_secs(120));
    let died = workers[0].wait().expect("worker 0 ended");
    assert!(
        !died.success(),
        "worker 0 was killed: {}",
        logs(&s, "one-dies")
    );
    stop(&mut workers[1..]);
    let (ids, docs) = alerts_in(&files);
    let got: BTreeSet<&String> = docs.keys().collect();
    assert_eq!(
        got,
        want,
        "nothing missing, nothing else: {}",
        logs(&s, "one-dies")
    );
    for (id, doc) in &docs {
        assert_eq!(doc, &s.expected[id], "the same alert, field for field");
    }
    // An alert the dead worker wrote after its last checkpoint may be
    // written again by the new owner: the same id and content.
    let repeated = ids.len() - docs.len();
    eprintln!("{repeated} alert(s) written again after the failover (same ids)");
    let restores: u64 = (1..3)
        .flat_map(|n| partitions_of(&s, "one-dies", n).into_values())
        .map(|p| p["restores"].as_u64().unwrap_or(0))
        .sum();
    assert!(
        restores >= 1,
        "the survivors restored the dead worker's partitions from checkpoints: {}",
        logs(&s, "one-dies")
    );
}
