//! `[[publish]]` tables, checked against the cameras when the config is assembled.

use super::{load, parse};

#[test]
fn publish_tables_are_checked_against_the_cameras() {
    let config = parse(
        "[[video]]\nname = \"front\"\n[[video]]\nname = \"arm\"\n\
         [[publish]]\nurl = \"http://10.0.0.2:7080/whip/endpoint/robot\"\ntoken = \"t\"\n\
         [[publish]]\nurl = \"https://sfu.example.org/whip\"\ncamera = \"arm\"\naudio = false\n",
    )
    .unwrap();
    let d = config.publish_destinations().unwrap();
    assert_eq!(
        (d[0].camera, d[0].audio, d[0].token.as_deref()),
        (0, true, Some("t"))
    );
    assert_eq!((d[1].camera, d[1].audio, d[1].url.https), (1, false, true));
    for (bad, error) in [
        ("url = \"rtmp://x/\"", "not an http:// or https:// URL"),
        ("url = \"http://x/\"\ncamera = \"rear\"", "no such camera"),
        ("url = \"http://x/\"\ntoken = \"a\\nb\"", "no line breaks"),
        ("url = \"http://x/\"\nstream = 1", "unknown field"),
    ] {
        let layer = ("test".to_string(), format!("[[publish]]\n{bad}\n"));
        let e = load(&[layer]).unwrap_err().to_string();
        assert!(e.contains(error), "{e}");
    }
}
