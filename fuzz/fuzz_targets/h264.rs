//! The Annex-B H.264 parser: NAL unit splitting, access-unit framing of a
//! stream read in chunks of any size (`AccessUnitSplitter`), and SPS/PPS
//! insertion (`ParameterSetCache`), with the SPS reader on what it caches.
//!
//! Input: a chunking seed byte, a flags byte, then the stream.
//!
//! Properties: the access units do not depend on how the stream was chunked;
//! together they hold exactly the stream's NAL units, in order; each starts
//! with a start code and doesn't end in a zero byte; the cache keeps every NAL
//! unit it is given and only adds parameter sets to IDR pictures.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telepi::media::h264::annexb::{
    is_idr, nal_type, nal_units, AccessUnitSplitter, ParameterSetCache, NAL_PPS, NAL_SPS,
};
use telepi::media::h264::sps::parse_sps;

fn drain(s: &mut AccessUnitSplitter, out: &mut Vec<Vec<u8>>) {
    while let Some(au) = s.next_access_unit() {
        out.push(au);
    }
}

/// Chunk lengths 1..=64 from a seed, repeating.
fn chunks<'a>(data: &'a [u8], seed: u8) -> impl Iterator<Item = &'a [u8]> {
    let mut rest = data;
    let mut state = u32::from(seed) | 1;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = ((state >> 16) % 64 + 1) as usize;
        let (chunk, next) = rest.split_at(n.min(rest.len()));
        rest = next;
        Some(chunk)
    })
}

fn check_access_unit(au: &[u8]) {
    assert!(
        au.starts_with(&[0, 0, 1]) || au.starts_with(&[0, 0, 0, 1]),
        "access unit without a start code: {au:02x?}"
    );
    assert_ne!(au.last(), Some(&0), "access unit ends in a zero byte");
}

fuzz_target!(|data: &[u8]| {
    let [seed, flags, stream @ ..] = data else {
        return;
    };

    // The whole stream at once, and the same stream in chunks.
    let mut whole = Vec::new();
    let mut s = AccessUnitSplitter::new(usize::MAX);
    s.push(stream);
    drain(&mut s, &mut whole);
    s.finish();
    drain(&mut s, &mut whole);

    let mut chunked = Vec::new();
    let mut s = AccessUnitSplitter::new(usize::MAX);
    for chunk in chunks(stream, *seed) {
        s.push(chunk);
        drain(&mut s, &mut chunked);
    }
    s.finish();
    drain(&mut s, &mut chunked);
    assert_eq!(whole, chunked, "access units depend on the chunking");

    let nals: Vec<&[u8]> = nal_units(stream).collect();
    let framed: Vec<&[u8]> = whole.iter().flat_map(|au| nal_units(au)).collect();
    assert_eq!(nals, framed, "access units lost or changed NAL units");
    for nal in &nals {
        assert!(!nal.is_empty() && nal.last() != Some(&0));
    }

    let mut cache = ParameterSetCache::new();
    for au in &whole {
        check_access_unit(au);
        let before: Vec<&[u8]> = nal_units(au).collect();
        let out = cache.process(au.clone());
        let after: Vec<&[u8]> = nal_units(&out).collect();
        if out != *au {
            assert!(is_idr(au), "parameter sets added to a non-IDR access unit");
            for nal in &before {
                assert!(after.contains(nal), "the cache dropped a NAL unit");
            }
            let types: Vec<u8> = after.iter().map(|n| nal_type(n)).collect();
            assert!(types.contains(&NAL_SPS) && types.contains(&NAL_PPS));
        }
    }
    if let Some(sps) = cache.sps() {
        let _ = parse_sps(sps);
    }

    // A bounded splitter, flushed at chunk boundaries as the pipe source does
    // when the stream goes quiet: no panics, well-formed access units.
    let max_len = 16 + usize::from(*flags) * 16;
    let mut s = AccessUnitSplitter::new(max_len);
    let mut out = Vec::new();
    for (i, chunk) in chunks(stream, seed.wrapping_add(1)).enumerate() {
        s.push(chunk);
        if (flags >> (i % 8)) & 1 == 1 && s.has_pending_picture() {
            s.flush_pending();
        }
        drain(&mut s, &mut out);
    }
    s.finish();
    drain(&mut s, &mut out);
    for au in &out {
        check_access_unit(au);
    }
});
