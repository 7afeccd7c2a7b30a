//! Loading `[video]` and `[[video]]` tables: one camera or several, laid
//! over the board profile, their mistakes explained.

use crate::config::Config;

fn load(layers: &[(String, String)]) -> Result<Config, String> {
    crate::config::load(layers).map_err(|e| e.to_string())
}

fn layers(texts: &[&str]) -> Vec<(String, String)> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("layer{i}"), t.to_string()))
        .collect()
}

fn names_and_sizes(config: &crate::config::Config) -> Vec<(String, u32, u32)> {
    config
        .cameras()
        .map(|c| (c.name.clone(), c.width, c.height))
        .collect()
}

#[test]
fn a_lone_video_table_is_one_camera_named_main() {
    let c = load(&layers(&["[video]\nwidth = 320\nheight = 240\n"])).unwrap();
    assert_eq!(names_and_sizes(&c), [("main".into(), 320, 240)]);
}

#[test]
fn video_tables_are_cameras_in_order_the_first_also_being_video() {
    let two = "[[video]]\nname = \"front\"\nsource = \"pattern\"\nwidth = 320\nheight = 240\n\
               [[video]]\nname = \"arm\"\nsource = \"pattern\"\nwidth = 160\nheight = 120\nencoder = \"openh264\"\n";
    let c = load(&layers(&[two])).unwrap();
    assert_eq!(
        names_and_sizes(&c),
        [("front".into(), 320, 240), ("arm".into(), 160, 120)]
    );
    assert_eq!(c.video.name, "front");
    assert_eq!(c.more_cameras[0].encoder, "openh264");
}

#[test]
fn each_video_table_is_laid_over_the_board_profiles_video() {
    let board = "[video]\nencoder = \"openh264\"\nfps = 15\n";
    let file = "[[video]]\nname = \"a\"\n[[video]]\nname = \"b\"\nfps = 10\n";
    let c = load(&layers(&[board, file])).unwrap();
    let got: Vec<(&str, &str, u32)> = c
        .cameras()
        .map(|v| (v.name.as_str(), v.encoder.as_str(), v.fps))
        .collect();
    assert_eq!(got, [("a", "openh264", 15), ("b", "openh264", 10)]);
}

#[test]
fn a_camera_may_record_always_and_records_on_the_operators_switch_by_default() {
    use crate::media::record::RecordWhen;
    let two = "[[video]]\nname = \"front\"\n[[video]]\nname = \"arm\"\nrecord = \"always\"\n";
    let c = load(&layers(&[two])).unwrap();
    let record: Vec<RecordWhen> = c.cameras().map(|v| v.record).collect();
    assert_eq!(record, [RecordWhen::Operator, RecordWhen::Always]);
    let err = load(&layers(&["[video]\nrecord = \"sometimes\"\n"])).unwrap_err();
    assert!(err.contains("unknown variant"), "{err}");
}

#[test]
fn mistakes_in_cameras_are_explained() {
    let err = |text: &str| load(&layers(&[text])).unwrap_err();
    assert!(err("[[video]]\n[[video]]\n").contains("\"main\" used twice"));
    assert!(err("[[video]]\nname = \"a b\"\n").contains("letters, digits"));
    assert!(err("video = []\n").contains("at least one camera"));
    assert!(err("[[video]]\nname = \"operator\"\n").contains("operator's camera"));
    let second_bad = err("[[video]]\nname = \"a\"\n[[video]]\nname = \"b\"\nwidth = 641\n");
    assert!(
        second_bad.contains("#2 (\"b\")") && second_bad.contains("even"),
        "{second_bad}"
    );
    let typo = err("[[video]]\nname = \"a\"\n[[video]]\nwidht = 3\n");
    assert!(
        typo.contains("#2") && typo.contains("unknown field"),
        "{typo}"
    );
}

#[test]
fn layers_default_to_auto_with_a_quarter_size_low_layer_and_mistakes_are_explained() {
    let c = load(&layers(&["[video]\nwidth = 640\nheight = 480\n"])).unwrap();
    assert_eq!(c.video.low_layer_size(), Some((320, 240)));
    assert_eq!(c.video.low_bitrate_range(), (50_000, 300_000));
    let odd = load(&layers(&["[video]\nwidth = 1280\nheight = 722\n"])).unwrap();
    assert_eq!(odd.video.low_layer_size(), Some((640, 360)));
    let single = load(&layers(&["[video]\nlayers = \"single\"\n"])).unwrap();
    assert_eq!(single.video.low_layer_size(), None);
    let err = |text: &str| load(&layers(&[text])).unwrap_err();
    assert!(err("[video]\nlayers = \"two\"\n").contains("auto or single"));
    assert!(err("[video]\nlow_scale = 8\n").contains("2..=4"));
    assert!(err("[video]\nlow_bitrate = 2000000\n").contains("below bitrate"));
    // A low bitrate with one encode has no low layer to leave room for.
    let lean = "[video]\nbitrate = 300000\nmin_bitrate = 300000\nlayers = \"single\"\n";
    assert!(load(&layers(&[lean])).is_ok());
    assert!(err("[video]\nbitrate = 300000\n").contains("layers = \"single\""));
}

#[test]
fn two_1080p30_hardware_streams_are_refused_at_start() {
    let hd = |name: &str, fps: u32| {
        format!("[[video]]\nname = \"{name}\"\nencoder = \"v4l2m2m\"\nwidth = 1920\nheight = 1080\nfps = {fps}\n")
    };
    let err = load(&layers(&[&(hd("front", 30) + &hd("arm", 30))])).unwrap_err();
    assert!(err.contains("hardware encoder cannot serve"), "{err}");
    load(&layers(&[&(hd("front", 15) + &hd("arm", 15))])).unwrap();
    let one_in_software = hd("front", 30) + &hd("arm", 30).replace("v4l2m2m", "openh264");
    load(&layers(&[&one_in_software])).unwrap();
}
