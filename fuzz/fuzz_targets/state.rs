//! Any messages of a state-topic partition into checkpoint reassembly (under
//! a key and without one), and any bytes into checkpoint decoding: no panic,
//! nothing kept beyond the limit, every whole checkpoint checked before use.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trailguard_kafka::{
    Auth, CheckpointScope, ChunkAssembler, ChunkHeaders, KafkaKey, PartitionCheckpoint,
};

/// Small enough that the fuzzer reaches it with chunks of its own.
const MAX_BYTES: usize = 64 * 1024;

/// The next `len`-prefixed field (one length byte), if the input has it.
fn field<'a>(data: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (&len, rest) = data.split_first()?;
    let len = usize::from(len).min(rest.len());
    let (field, rest) = rest.split_at(len);
    *data = rest;
    Some(field)
}

fuzz_target!(|data: &[u8]| {
    if let Ok(checkpoint) = PartitionCheckpoint::decode(data) {
        let _ = checkpoint.check_offset("ct", 0, 1_000);
    }
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let auth = match KafkaKey::new(&[7; 32]) {
        Ok(key) if mode & 1 == 1 => Auth::Key(key),
        _ => Auth::Insecure,
    };
    let scope = CheckpointScope {
        input_topic: "ct".into(),
        state_topic: "ct.trailguard-state".into(),
        group: "g".into(),
        partition: 0,
    };
    let mut assembler = ChunkAssembler::new(auth, scope, MAX_BYTES);
    // Messages: id, position, MAC (empty: none), payload (two length bytes).
    while let (Some(id), Some(position), Some(mac)) =
        (field(&mut rest), field(&mut rest), field(&mut rest))
    {
        let payload_len = match rest {
            [hi, lo, tail @ ..] => {
                rest = tail;
                (usize::from(*hi) << 8 | usize::from(*lo)).min(rest.len())
            }
            _ => 0,
        };
        let (payload, tail) = rest.split_at(payload_len);
        rest = tail;
        let headers = ChunkHeaders {
            checkpoint: Some(id),
            chunk: Some(position),
            mac: (!mac.is_empty()).then_some(mac),
        };
        if let Ok(Some(whole)) = assembler.push(&headers, payload) {
            assert!(whole.len() <= MAX_BYTES);
            if let Ok(checkpoint) = PartitionCheckpoint::decode(&whole) {
                let _ = checkpoint.check_offset("ct", 0, 1_000);
            }
        }
    }
});
