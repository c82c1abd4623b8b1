//! Benchmark guest for `benches/boundary.rs`: the same batch arrives in three
//! encodings and the guest touches every string field of every event, as a
//! rule's decoding does, so each measurement covers crossing plus reading.

#[cfg(target_arch = "wasm32")]
#[allow(missing_docs, unsafe_code, clippy::all)]
mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "encoding-probe" });
}

/// Adds the length of every present string field to a checksum.
#[cfg(any(target_arch = "wasm32", test))]
fn checksum<'a>(fields: impl IntoIterator<Item = Option<&'a str>>) -> u64 {
    fields.into_iter().flatten().map(|s| s.len() as u64).sum()
}

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod guest {
    use super::bindings::exports::trailguard::encoding_probe::probe::{EventRefs, Guest};
    use super::checksum;

    struct Probe;

    fn span<'a>(text: &'a str, offsets: &[u32], i: u32) -> Option<&'a str> {
        if i == 0 {
            return None;
        }
        let start = *offsets.get(i as usize)? as usize;
        let end = *offsets.get(i as usize + 1)? as usize;
        text.get(start..end)
    }

    fn refs(e: &EventRefs) -> [u32; 14] {
        [
            e.event_id,
            e.event_action,
            e.event_provider,
            e.cloud_region,
            e.cloud_account_id,
            e.user_name,
            e.identity_type,
            e.identity_arn,
            e.source_address,
            e.source_ip,
            e.source_as_organization,
            e.user_agent,
            e.error_code,
            e.user_changes_name,
        ]
    }

    impl Guest for Probe {
        fn records(
            events: Vec<super::bindings::exports::trailguard::encoding_probe::probe::EventStrings>,
        ) -> u64 {
            events
                .iter()
                .map(|e| {
                    checksum([
                        e.event_id.as_deref(),
                        e.event_action.as_deref(),
                        e.event_provider.as_deref(),
                        e.cloud_region.as_deref(),
                        e.cloud_account_id.as_deref(),
                        e.user_name.as_deref(),
                        e.identity_type.as_deref(),
                        e.identity_arn.as_deref(),
                        e.source_address.as_deref(),
                        e.source_ip.as_deref(),
                        e.source_as_organization.as_deref(),
                        e.user_agent.as_deref(),
                        e.error_code.as_deref(),
                        e.user_changes_name.as_deref(),
                    ])
                })
                .sum()
        }

        fn table(strings: Vec<String>, events: Vec<EventRefs>) -> u64 {
            let at = |i: u32| {
                (i != 0)
                    .then(|| strings.get(i as usize).map(String::as_str))
                    .flatten()
            };
            events.iter().map(|e| checksum(refs(e).map(at))).sum()
        }

        fn blob(text: String, offsets: Vec<u32>, events: Vec<EventRefs>) -> u64 {
            let at = |i: u32| span(&text, &offsets, i);
            events.iter().map(|e| checksum(refs(e).map(at))).sum()
        }

        fn columns(
            text: String,
            offsets: Vec<u32>,
            timestamps: Vec<i64>,
            refs: Vec<u32>,
            _as_numbers: Vec<u32>,
            _outcomes: Vec<u8>,
        ) -> u64 {
            let at = |i: &u32| span(&text, &offsets, *i);
            refs.chunks_exact(14)
                .take(timestamps.len())
                .map(|event| checksum(event.iter().map(at)))
                .sum()
        }
    }

    super::bindings::export!(Probe with_types_in super::bindings);
}

#[cfg(test)]
mod tests {
    #[test]
    fn checksum_counts_present_strings() {
        assert_eq!(super::checksum([Some("ab"), None, Some("c")]), 3);
    }
}
