//! README promises that must stay true of the binary.

use std::process::Command;

/// Issue 19: README's `telepi --help` block had drifted from the binary's.
#[test]
fn readme_help_block_is_the_binarys_help() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let (_, after) = readme
        .split_once("`telepi --help`:\n\n```\n")
        .expect("README has a `telepi --help`: block");
    let (block, _) = after.split_once("```\n").expect("the block ends");
    let out = Command::new(env!("CARGO_BIN_EXE_telepi"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        block,
        String::from_utf8(out.stdout).unwrap(),
        "README's `telepi --help` block (left) differs from `telepi --help` (right)"
    );
}
