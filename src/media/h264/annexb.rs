//! H.264 Annex-B byte streams: NAL unit splitting, access-unit framing of a
//! raw stream read in arbitrary chunks (pipes), and SPS/PPS bookkeeping for
//! streams that send them only once.

use std::collections::VecDeque;

pub const NAL_SLICE: u8 = 1;
pub const NAL_IDR: u8 = 5;
pub const NAL_SEI: u8 = 6;
pub const NAL_SPS: u8 = 7;
pub const NAL_PPS: u8 = 8;
pub const NAL_AUD: u8 = 9;

const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// Offset of the next `00 00 01` at or after `from`.
fn find_start_code(data: &[u8], from: usize) -> Option<usize> {
    let tail = data.get(from..)?;
    let mut i = 0;
    while i + 2 < tail.len() {
        // Skip ahead quickly: a start code needs a 1 two bytes after two zeros.
        match tail[i + 2] {
            1 if tail[i] == 0 && tail[i + 1] == 0 => return Some(from + i),
            0 => i += 1,
            _ => i += 3,
        }
    }
    None
}

/// NAL units never end in a zero byte; zeros there are `trailing_zero_8bits`
/// or the first byte of a 4-byte start code.
fn trim_trailing_zeros(data: &[u8]) -> &[u8] {
    let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    &data[..end]
}

/// Iterator over the NAL units of an Annex-B buffer, each without its start
/// code; bytes before the first start code are ignored.
pub struct NalUnits<'a> {
    data: &'a [u8],
    next: Option<usize>,
}

/// Splits an Annex-B buffer (3- or 4-byte start codes) into NAL units.
pub fn nal_units(data: &[u8]) -> NalUnits<'_> {
    NalUnits {
        data,
        next: find_start_code(data, 0),
    }
}

impl<'a> Iterator for NalUnits<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            let start = self.next? + 3;
            self.next = find_start_code(self.data, start);
            let end = self.next.unwrap_or(self.data.len());
            let nal = trim_trailing_zeros(&self.data[start..end]);
            if !nal.is_empty() {
                return Some(nal);
            }
        }
    }
}

/// `nal_unit_type` from a NAL unit's header byte (0 for an empty slice).
pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1F)
}

/// Coded slice NAL units (non-IDR, data partitions, IDR).
pub fn is_vcl(nal_type: u8) -> bool {
    (1..=5).contains(&nal_type)
}

/// Whether an access unit contains a NAL unit of `nal_type`.
pub fn contains(access_unit: &[u8], nal_type_wanted: u8) -> bool {
    nal_units(access_unit).any(|nal| nal_type(nal) == nal_type_wanted)
}

/// Whether an access unit is an IDR picture.
pub fn is_idr(access_unit: &[u8]) -> bool {
    contains(access_unit, NAL_IDR)
}

/// True when a NAL unit, following a picture's slices, starts the next access
/// unit (H.264 7.4.1.2.3). For slices that means `first_mb_in_slice == 0`,
/// whose ue(v) code is the single bit `1` right after the header byte.
/// `None` when the slice header byte hasn't arrived yet.
fn starts_access_unit(nal_type: u8, slice_header: Option<u8>) -> Option<bool> {
    match nal_type {
        NAL_SEI | NAL_SPS | NAL_PPS | NAL_AUD | 14..=18 => Some(true),
        1 | NAL_IDR => slice_header.map(|b| b & 0x80 != 0),
        _ => Some(false),
    }
}

/// Remembers the latest SPS and PPS and puts them in front of IDR access units
/// that lack them, so a peer joining mid-stream can decode the next IDR
/// (e.g. `rpicam-vid` without `--inline` sends them only once).
#[derive(Debug, Default)]
pub struct ParameterSetCache {
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
}

impl ParameterSetCache {
    pub fn new() -> ParameterSetCache {
        ParameterSetCache::default()
    }

    /// The latest SPS NAL unit seen (header byte included).
    pub fn sps(&self) -> Option<&[u8]> {
        self.sps.as_deref()
    }

    /// Learns from `access_unit` and returns it, completed with the cached
    /// SPS/PPS if it is an IDR without them. Output uses 4-byte start codes
    /// in the order AUD, SPS, PPS, everything else.
    pub fn process(&mut self, access_unit: Vec<u8>) -> Vec<u8> {
        let (mut has_sps, mut has_pps, mut has_idr) = (false, false, false);
        for nal in nal_units(&access_unit) {
            match nal_type(nal) {
                NAL_SPS => {
                    has_sps = true;
                    self.sps = Some(nal.to_vec());
                }
                NAL_PPS => {
                    has_pps = true;
                    self.pps = Some(nal.to_vec());
                }
                NAL_IDR => has_idr = true,
                _ => {}
            }
        }
        if !has_idr || (has_sps && has_pps) {
            return access_unit;
        }
        let (Some(sps), Some(pps)) = (&self.sps, &self.pps) else {
            // Nothing to add yet; the decoder will wait for parameter sets.
            return access_unit;
        };
        let mut out = Vec::with_capacity(access_unit.len() + sps.len() + pps.len() + 16);
        let mut push = |nal: &[u8]| {
            out.extend_from_slice(&START_CODE);
            out.extend_from_slice(nal);
        };
        let nals: Vec<&[u8]> = nal_units(&access_unit).collect();
        let of_type = |t: u8| nals.iter().copied().filter(move |n| nal_type(n) == t);
        of_type(NAL_AUD).for_each(&mut push);
        if has_sps {
            of_type(NAL_SPS).for_each(&mut push);
        } else {
            push(sps);
        }
        if has_pps {
            of_type(NAL_PPS).for_each(&mut push);
        } else {
            push(pps);
        }
        nals.iter()
            .filter(|n| !matches!(nal_type(n), NAL_AUD | NAL_SPS | NAL_PPS))
            .for_each(|n| push(n));
        out
    }
}

/// Cuts an Annex-B byte stream, arriving in chunks of any size, into access
/// units. An access unit ends where the next one starts: at an AUD, SPS, PPS
/// or SEI after a picture's slices, or at a slice with `first_mb_in_slice == 0`.
#[derive(Debug)]
pub struct AccessUnitSplitter {
    /// The access unit being assembled, starting at its first start code
    /// (or, before `synced`, bytes searched for a start code).
    buf: Vec<u8>,
    synced: bool,
    /// Bytes of `buf` before this offset have been searched for start codes.
    scanned: usize,
    /// A start code was found at `scanned` but its NAL header hasn't arrived.
    waiting_for_header: bool,
    has_picture: bool,
    ready: VecDeque<Vec<u8>>,
    max_len: usize,
}

impl AccessUnitSplitter {
    /// `max_len` bounds one access unit; a longer one (garbage, or a stream
    /// that never marks boundaries) is thrown away.
    pub fn new(max_len: usize) -> AccessUnitSplitter {
        AccessUnitSplitter {
            buf: Vec::new(),
            synced: false,
            scanned: 0,
            waiting_for_header: false,
            has_picture: false,
            ready: VecDeque::new(),
            max_len,
        }
    }

    /// Feeds the next bytes of the stream.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
        loop {
            let Some(mut sc) = find_start_code(&self.buf, self.scanned) else {
                // Keep the last two bytes: they may begin a start code.
                if !self.synced {
                    // Three bytes: they may be the zeros of a 4-byte start code.
                    let keep_from = self.buf.len().saturating_sub(3);
                    self.buf.drain(..keep_from);
                }
                self.scanned = self.scanned.max(self.buf.len().saturating_sub(2));
                self.waiting_for_header = false;
                break;
            };
            let Some(&header) = self.buf.get(sc + 3) else {
                self.scanned = sc;
                self.waiting_for_header = true;
                break;
            };
            if !self.synced {
                // Whatever preceded the first start code is not H.264. Synced
                // as soon as the NAL header is here, so a stream that ends
                // before the slice header still gives its last NAL unit.
                let cut = self.cut_point(sc);
                self.buf.drain(..cut);
                self.synced = true;
                sc -= cut;
            }
            let t = header & 0x1F;
            let Some(boundary) = starts_access_unit(t, self.buf.get(sc + 4).copied()) else {
                self.scanned = sc;
                self.waiting_for_header = true;
                break;
            };
            // Just synced: nothing assembled yet, so no picture to emit.
            if boundary && self.has_picture {
                let cut = self.cut_point(sc);
                self.emit(cut);
                sc -= cut;
            }
            self.has_picture |= is_vcl(t);
            self.scanned = sc + 3;
        }
        if self.buf.len() > self.max_len {
            tracing::warn!(
                "H.264 stream: dropped {} bytes without an access-unit boundary (limit {})",
                self.buf.len(),
                self.max_len
            );
            self.reset();
        }
    }

    /// Where to cut before the start code at `sc`: a zero byte in front of it
    /// makes it a 4-byte start code, which stays whole.
    fn cut_point(&self, sc: usize) -> usize {
        if sc > 0 && self.buf[sc - 1] == 0 {
            sc - 1
        } else {
            sc
        }
    }

    /// Moves `buf[..end]` to the ready queue as one access unit.
    fn emit(&mut self, end: usize) {
        let au: Vec<u8> = self.buf.drain(..end).collect();
        let len = trim_trailing_zeros(&au).len();
        if len > 0 {
            let mut au = au;
            au.truncate(len);
            self.ready.push_back(au);
        }
        self.has_picture = false;
        self.scanned = 0;
    }

    /// The next complete access unit, oldest first.
    pub fn next_access_unit(&mut self) -> Option<Vec<u8>> {
        self.ready.pop_front()
    }

    /// True while the access unit being assembled already holds a slice,
    /// i.e. it may be complete and only waiting for the next one to start.
    pub fn has_pending_picture(&self) -> bool {
        self.has_picture
    }

    /// Declares the access unit being assembled complete. Producers write a
    /// picture at a time, so once the stream goes quiet after a slice there is
    /// no reason to hold the picture back for a frame interval.
    pub fn flush_pending(&mut self) {
        if !self.has_picture {
            return;
        }
        let end = if self.waiting_for_header {
            self.cut_point(self.scanned)
        } else {
            trim_trailing_zeros(&self.buf).len()
        };
        self.emit(end);
        // What stays (zeros, or a start code without its header) is re-synced.
        self.synced = false;
        self.waiting_for_header = false;
    }

    /// End of stream: whatever was assembled becomes the last access unit.
    pub fn finish(&mut self) {
        if self.synced {
            let end = self.buf.len();
            self.emit(end);
        }
        self.reset();
    }

    /// Forgets everything except already completed access units.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.synced = false;
        self.scanned = 0;
        self.waiting_for_header = false;
        self.has_picture = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nal_units_with_both_start_code_lengths() {
        let data = [
            0xAA, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 1, 0x65, 0x88, 0,
        ];
        let nals: Vec<&[u8]> = nal_units(&data).collect();
        assert_eq!(nals, [&[0x67, 1, 2][..], &[0x68, 3], &[0x65, 0x88]]);
        assert_eq!(
            nals.iter().map(|n| nal_type(n)).collect::<Vec<_>>(),
            [NAL_SPS, NAL_PPS, NAL_IDR]
        );
        assert!(is_idr(&data));
        assert!(contains(&data, NAL_PPS));
        assert!(!contains(&data, NAL_AUD));
        assert_eq!(nal_units(&[0, 0, 1]).count(), 0);
        assert_eq!(nal_units(&[1, 2, 3]).count(), 0);
        assert_eq!(nal_type(&[]), 0);
    }

    fn nal(bytes: &[u8]) -> Vec<u8> {
        let mut v = START_CODE.to_vec();
        v.extend_from_slice(bytes);
        v
    }

    const SPS: &[u8] = &[0x67, 0x42, 0xC0, 0x1E];
    const PPS: &[u8] = &[0x68, 0xCE, 0x38];
    const IDR: &[u8] = &[0x65, 0x88, 0x84, 0x21];
    const P0: &[u8] = &[0x41, 0x9A, 0x02];
    const P1: &[u8] = &[0x41, 0x9B, 0x03];

    #[test]
    fn parameter_sets_are_added_to_bare_idrs() {
        let mut cache = ParameterSetCache::new();
        let first = [nal(SPS), nal(PPS), nal(IDR)].concat();
        assert_eq!(cache.process(first.clone()), first);
        assert_eq!(cache.sps(), Some(SPS));
        let p = nal(P0);
        assert_eq!(cache.process(p.clone()), p, "non-IDR untouched");
        let bare = [nal(&[0x09, 0xF0]), nal(IDR)].concat();
        assert_eq!(
            cache.process(bare),
            [nal(&[0x09, 0xF0]), nal(SPS), nal(PPS), nal(IDR)].concat(),
            "AUD stays first"
        );
        // A new SPS without a PPS gets the cached PPS after it.
        let new_sps = [0x67, 0x42, 0xC0, 0x28];
        assert_eq!(
            cache.process([nal(&new_sps), nal(IDR)].concat()),
            [nal(&new_sps), nal(PPS), nal(IDR)].concat()
        );
    }

    #[test]
    fn idr_without_any_cached_parameter_sets_passes_through() {
        let mut cache = ParameterSetCache::new();
        assert_eq!(cache.process(nal(IDR)), nal(IDR));
    }

    /// The NAL units of each access unit (start code lengths don't matter).
    fn nals_of(aus: &[Vec<u8>]) -> Vec<Vec<Vec<u8>>> {
        aus.iter()
            .map(|au| nal_units(au).map(<[u8]>::to_vec).collect())
            .collect()
    }

    fn split_all(stream: &[u8], chunk: usize) -> Vec<Vec<u8>> {
        let mut s = AccessUnitSplitter::new(1 << 20);
        let mut out = Vec::new();
        for c in stream.chunks(chunk) {
            s.push(c);
            while let Some(au) = s.next_access_unit() {
                out.push(au);
            }
        }
        s.finish();
        while let Some(au) = s.next_access_unit() {
            out.push(au);
        }
        out
    }

    #[test]
    fn splitter_finds_access_units_in_any_chunking() {
        let second_slice = [0x41, 0x20, 0x01]; // first_mb_in_slice != 0: same picture
        let sei = [0x06, 0x05, 0x01];
        let stream = [
            vec![0x13, 0x37, 0x00], // garbage before the first start code
            nal(SPS),
            nal(PPS),
            nal(IDR),
            nal(P0),
            nal(&second_slice),
            nal(&sei), // SEI after slices starts the next access unit
            nal(P1),
            vec![0, 0, 1, 0x09, 0xF0, 0, 0], // 3-byte start code, AUD, trailing zeros
            nal(P0),
        ]
        .concat();
        let expected = nals_of(&[
            [nal(SPS), nal(PPS), nal(IDR)].concat(),
            [nal(P0), nal(&second_slice)].concat(),
            [nal(&sei), nal(P1)].concat(),
            [nal(&[0x09, 0xF0]), nal(P0)].concat(),
        ]);
        for chunk in 1..=stream.len() {
            let aus = split_all(&stream, chunk);
            assert_eq!(nals_of(&aus), expected, "chunk size {chunk}");
            assert!(
                aus.iter().all(|au| au.last() != Some(&0)),
                "trailing zeros trimmed"
            );
        }
    }

    #[test]
    fn splitter_splits_consecutive_pictures_without_delimiters() {
        let stream = [nal(IDR), nal(P0), nal(P1)].concat();
        assert_eq!(split_all(&stream, 3), [nal(IDR), nal(P0), nal(P1)]);
    }

    fn next_nals(s: &mut AccessUnitSplitter) -> Option<Vec<Vec<u8>>> {
        s.next_access_unit().map(|au| nals_of(&[au]).remove(0))
    }

    #[test]
    fn flush_pending_releases_a_picture_without_waiting_for_the_next() {
        let mut s = AccessUnitSplitter::new(1 << 20);
        s.push(&[nal(SPS), nal(PPS), nal(IDR)].concat());
        assert_eq!(
            s.next_access_unit(),
            None,
            "can't know the IDR is complete yet"
        );
        assert!(s.has_pending_picture());
        s.flush_pending();
        assert_eq!(
            s.next_access_unit(),
            Some([nal(SPS), nal(PPS), nal(IDR)].concat())
        );
        assert!(!s.has_pending_picture());
        // The stream continues normally, even with a start code split by the flush.
        s.push(&[nal(P0), vec![0, 0]].concat());
        s.flush_pending();
        assert_eq!(s.next_access_unit(), Some(nal(P0)));
        s.push(&[&[0, 1][..], P1, &nal(P0)].concat());
        assert_eq!(next_nals(&mut s), Some(vec![P1.to_vec()]));
        // A start code whose header hasn't arrived stays for the next picture.
        s.push(&[0, 0, 0, 1]);
        s.flush_pending();
        assert_eq!(next_nals(&mut s), Some(vec![P0.to_vec()]));
        s.push(&P1[..1]);
        s.push(&P1[1..]);
        s.finish();
        assert_eq!(next_nals(&mut s), Some(vec![P1.to_vec()]));
        // Nothing is pending without a slice.
        s.push(&nal(SPS));
        s.flush_pending();
        assert_eq!(s.next_access_unit(), None);
    }

    #[test]
    fn oversized_garbage_is_dropped_and_the_stream_resyncs() {
        let mut s = AccessUnitSplitter::new(64);
        s.push(&nal(IDR));
        s.push(&[0x55; 100]);
        assert!(s.buf.is_empty(), "oversized access unit dropped");
        s.push(&[0x55; 1000]);
        assert!(
            s.buf.len() <= 3,
            "garbage without start codes can't grow memory"
        );
        s.push(&[nal(P0), nal(P1)].concat());
        s.finish();
        assert_eq!(next_nals(&mut s), Some(vec![P0.to_vec()]));
        assert_eq!(next_nals(&mut s), Some(vec![P1.to_vec()]));
        assert_eq!(s.next_access_unit(), None);
    }

    /// Found by `fuzz/run.sh` (h264): a stream whose only NAL unit ends right
    /// after its header byte was never synced to, and `finish` dropped it.
    #[test]
    fn a_stream_ending_after_its_first_nal_header_keeps_that_nal() {
        let stream = [
            0x00, 0x00, 0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x67, 0x01, 0x67,
            0x42, 0x00, 0x00, 0x01, 0x65,
        ];
        let mut s = AccessUnitSplitter::new(1 << 20);
        s.push(&stream);
        s.finish();
        assert_eq!(next_nals(&mut s), Some(vec![vec![0x65]]));
        assert_eq!(s.next_access_unit(), None);
        // Byte by byte, the same.
        let mut s = AccessUnitSplitter::new(1 << 20);
        stream.iter().for_each(|b| s.push(&[*b]));
        s.finish();
        assert_eq!(next_nals(&mut s), Some(vec![vec![0x65]]));
    }
}
