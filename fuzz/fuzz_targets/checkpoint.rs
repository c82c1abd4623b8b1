//! Any bytes as a checkpoint file of a state directory (`--state-dir`):
//! the frame (magic line, checksum) and the engine state inside it, decoded
//! and loaded into an engine. Nothing may panic or allocate beyond what the
//! bytes pay for.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use trailguard_host::checkpoint::payload;
use trailguard_host::{Engine, EngineOptions, EngineState, Runtime, RuntimeOptions};

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| Runtime::new(RuntimeOptions::default()).expect("runtime"))
}

fuzz_target!(|data: &[u8]| {
    let _ = payload(data);
    if let Ok(state) = postcard::from_bytes::<EngineState>(data) {
        let mut engine =
            Engine::new(runtime(), &[], EngineOptions::default()).expect("an empty engine");
        let _ = engine.load_state(state);
    }
});
