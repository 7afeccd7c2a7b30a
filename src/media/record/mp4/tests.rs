use super::*;
use crate::media::encoder::openh264::OpenH264Encoder;
use crate::media::source::pattern::TestPattern;
use crate::media::{VideoEncoder, VideoSource};

/// `n` access units of the test pattern through openh264, an IDR first and every `gop`.
pub(crate) fn encoded_frames(width: u32, height: u32, n: usize, gop: usize) -> Vec<Vec<u8>> {
    let mut source = TestPattern::new(width, height, 30).unwrap();
    let mut encoder = OpenH264Encoder::new(width, height, 30, 500_000).unwrap();
    (0..n)
        .map(|i| {
            let frame = source.next_frame().unwrap();
            encoder
                .encode(&frame, i.is_multiple_of(gop))
                .unwrap()
                .unwrap()
        })
        .collect()
}

/// The boxes at one level: (type, body).
fn boxes(data: &[u8]) -> Vec<(String, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= data.len() {
        let size = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        assert!(
            size >= 8 && at + size <= data.len(),
            "box size {size} at {at}"
        );
        let kind = String::from_utf8_lossy(&data[at + 4..at + 8]).into_owned();
        out.push((kind, &data[at + 8..at + size]));
        at += size;
    }
    assert_eq!(at, data.len(), "boxes fill their parent exactly");
    out
}

fn child<'a>(data: &'a [u8], kind: &str) -> &'a [u8] {
    boxes(data)
        .into_iter()
        .find(|(k, _)| k == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
        .1
}

fn u32_at(data: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(data[at..at + 4].try_into().unwrap())
}

fn params() -> (VideoParams, Vec<Vec<u8>>) {
    let frames = encoded_frames(320, 240, 4, 30);
    let params = VideoParams::from_access_unit(&frames[0]).unwrap().unwrap();
    (params, frames)
}

#[test]
fn parameters_come_from_the_idr_and_p_frames_have_none() {
    let (params, frames) = params();
    assert_eq!((params.width, params.height), (320, 240));
    assert_eq!(nal_type(&params.sps), NAL_SPS);
    assert_eq!(nal_type(&params.pps), NAL_PPS);
    assert_eq!(VideoParams::from_access_unit(&frames[1]).unwrap(), None);
    let mut broken = vec![0, 0, 0, 1, 0x67, 0xFF];
    broken.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xCE]);
    assert!(VideoParams::from_access_unit(&broken).is_err());
}

#[test]
fn samples_are_length_prefixed_without_parameter_sets() {
    let au = [
        &[0, 0, 0, 1, 0x09, 0xF0][..],
        &[0, 0, 0, 1, 0x67, 1, 2, 3],
        &[0, 0, 1, 0x68, 4],
        &[0, 0, 0, 1, 0x65, 0x88, 0x80],
        &[0, 0, 1, 0x65, 0x99],
    ]
    .concat();
    assert_eq!(
        length_prefixed(&au),
        [0, 0, 0, 3, 0x65, 0x88, 0x80, 0, 0, 0, 2, 0x65, 0x99]
    );
}

#[test]
fn the_init_segment_declares_avc1_with_the_stream_parameters_and_mvex() {
    let (params, _) = params();
    let init = Muxer::new(params.clone(), true).init_segment();
    let top: Vec<String> = boxes(&init).into_iter().map(|(k, _)| k).collect();
    assert_eq!(top, ["ftyp", "moov"]);
    let moov = child(&init, "moov");
    let kinds: Vec<String> = boxes(moov).into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, ["mvhd", "trak", "trak", "mvex"]);
    let stsd = child(
        child(child(child(child(moov, "trak"), "mdia"), "minf"), "stbl"),
        "stsd",
    );
    let avc1 = child(&stsd[8..], "avc1");
    assert_eq!(&avc1[24..28], [1, 64, 0, 240], "320x240");
    let avcc = child(&avc1[78..], "avcC");
    assert_eq!(&avcc[1..4], &params.sps[1..4]);
    assert_eq!(&avcc[8..8 + params.sps.len()], &params.sps[..]);
    let trex = boxes(child(moov, "mvex"));
    assert_eq!(trex.len(), 2);
    assert_eq!(u32_at(trex[1].1, 4), AUDIO_TRACK);
    let video_only = Muxer::new(params, false).init_segment();
    assert_eq!(boxes(child(&video_only, "moov")).len(), 3);
}

#[test]
fn a_fragment_points_each_track_at_its_bytes_in_mdat() {
    let (params, frames) = params();
    let mut muxer = Muxer::new(params, true);
    let samples: Vec<VideoSample> = frames
        .iter()
        .enumerate()
        .map(|(i, au)| VideoSample {
            data: length_prefixed(au),
            duration: 3000,
            keyframe: i == 0,
        })
        .collect();
    let audio = [0x7Fu8; 160];
    let first = muxer.fragment(&samples, &audio);
    let second = muxer.fragment(&samples[1..], &audio);
    for (fragment, sequence, video_time) in [(&first, 1, 0u64), (&second, 2, 12_000)] {
        let top = boxes(fragment);
        assert_eq!(top[0].0, "moof");
        assert_eq!(top[1].0, "mdat");
        let moof_size = top[0].1.len() + 8;
        let moof = top[0].1;
        assert_eq!(u32_at(child(moof, "mfhd"), 4), sequence);
        let trafs: Vec<&[u8]> = boxes(moof)
            .into_iter()
            .filter(|(k, _)| k == "traf")
            .map(|(_, b)| b)
            .collect();
        let video_samples = if sequence == 1 {
            &samples[..]
        } else {
            &samples[1..]
        };
        // Video: its first sample's bytes sit where data_offset says.
        let tfdt = child(trafs[0], "tfdt");
        assert_eq!(
            u64::from_be_bytes(tfdt[4..12].try_into().unwrap()),
            video_time
        );
        let trun = child(trafs[0], "trun");
        assert_eq!(u32_at(trun, 4) as usize, video_samples.len());
        let offset = u32_at(trun, 8) as usize;
        let first_sample = &video_samples[0].data;
        assert_eq!(
            &fragment[offset..offset + first_sample.len()],
            &first_sample[..]
        );
        assert_eq!(u32_at(trun, 12), 3000, "duration");
        let expected_flags = if sequence == 1 { SYNC } else { NON_SYNC };
        assert_eq!(u32_at(trun, 20), expected_flags);
        // Audio: after the video, 160 one-byte samples.
        let trun = child(trafs[1], "trun");
        assert_eq!(u32_at(trun, 4), 160);
        let offset = u32_at(trun, 8) as usize;
        let video_bytes: usize = video_samples.iter().map(|s| s.data.len()).sum();
        assert_eq!(offset, moof_size + 8 + video_bytes);
        assert_eq!(&fragment[offset..], &audio[..]);
    }
}

#[test]
fn audio_only_fragments_and_a_file_without_audio_track() {
    let (params, _) = params();
    let mut muxer = Muxer::new(params.clone(), true);
    muxer.skip_audio(80);
    let fragment = muxer.fragment(&[], &[1, 2, 3]);
    let moof = boxes(&fragment)[0].1;
    let traf = child(moof, "traf");
    assert_eq!(u32_at(child(traf, "tfhd"), 4), AUDIO_TRACK);
    let tfdt = child(traf, "tfdt");
    assert_eq!(u64::from_be_bytes(tfdt[4..12].try_into().unwrap()), 80);
    let mut silent = Muxer::new(params, false);
    let fragment = silent.fragment(&[], &[1, 2, 3]);
    let moof = boxes(&fragment)[0].1;
    assert!(
        boxes(moof).iter().all(|(k, _)| k != "traf"),
        "no audio track to put it in"
    );
}
