//! Sizes on disk for the report: the stripped telepi binaries and the venv.

use std::path::{Path, PathBuf};

use super::Inputs;

/// The stripped telepi binary (host and any cross-built targets) and the baseline's venv.
pub fn sizes(inputs: &Inputs) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut bins = vec![(
        std::env::consts::ARCH.to_string(),
        inputs.telepi_bin.clone(),
    )];
    // Cross builds (board/build-cross.sh) land in target/<triple>/release/telepi.
    let target_dir = inputs
        .telepi_bin
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"));
    if let Ok(entries) = std::fs::read_dir(&target_dir) {
        let mut cross: Vec<_> = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains('-'))
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.path().join("release/telepi"),
                )
            })
            .filter(|(_, p)| p.is_file())
            .collect();
        cross.sort();
        bins.extend(cross);
    }
    for (target, path) in bins {
        if let Some(size) = stripped_size(&path) {
            out.push((
                format!("telepi, stripped, {target} (`{}`)", path.display()),
                size,
            ));
        }
    }
    let venv = dir_size(&inputs.venv);
    if venv > 0 {
        out.push((
            format!(
                "baseline: Python venv with aiortc, aiohttp, numpy (`{}`)",
                inputs.venv.display()
            ),
            venv,
        ));
    }
    out
}

/// Size after `strip` (a copy; the release profile already strips, so
/// normally the same). Falls back to the file size when strip can't read it.
fn stripped_size(path: &Path) -> Option<u64> {
    let size = std::fs::metadata(path).ok()?.len();
    let tmp = std::env::temp_dir().join(format!("telepi-bench-strip-{}", std::process::id()));
    let ok = std::process::Command::new("strip")
        .arg("-o")
        .arg(&tmp)
        .arg(path)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let stripped = if ok {
        std::fs::metadata(&tmp).map(|m| m.len()).ok()
    } else {
        None
    };
    let _ = std::fs::remove_file(&tmp);
    Some(stripped.unwrap_or(size))
}

fn dir_size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_file() {
        return meta.len();
    }
    if !meta.is_dir() {
        return 0;
    }
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}
