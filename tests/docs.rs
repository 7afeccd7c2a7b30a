//! Docs that cannot drift: what README.md and docs/ show is checked against
//! the code. Every TOML block parses with the real config loader, the
//! configuration reference lists exactly the keys the loader accepts, every
//! JSON example parses (data-channel and local-API messages with their real
//! parsers), the command-line page equals `telepi --help`, the board
//! profiles listed equal `telepi --board list`, and every relative link
//! (and its #anchor) resolves.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The Markdown files a reader is sent to: README, CHANGELOG and docs/.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![Path::new(ROOT).join("README.md")];
    let changelog = Path::new(ROOT).join("CHANGELOG.md");
    if changelog.exists() {
        pages.push(changelog);
    }
    let mut dirs = vec![Path::new(ROOT).join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                pages.push(path);
            }
        }
    }
    pages.sort();
    pages
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn name(path: &Path) -> String {
    path.strip_prefix(ROOT)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// A fenced code block: its info string, its text, and the line it starts on.
struct Block {
    info: String,
    text: String,
    line: usize,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut found = Vec::new();
    let mut open: Option<Block> = None;
    for (n, line) in markdown.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => {
                open = Some(Block {
                    info: info.trim().to_string(),
                    text: String::new(),
                    line: n + 1,
                })
            }
            (Some(_), Some(_)) => found.push(open.take().unwrap()),
            (Some(block), None) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            (None, None) => {}
        }
    }
    found
}

/// Text outside code blocks, line by line (links and headings live there).
fn prose(markdown: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut lines = Vec::new();
    for (n, line) in markdown.lines().enumerate() {
        if line.starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            lines.push((n + 1, line));
        }
    }
    lines
}

#[test]
fn every_toml_block_is_a_config_the_loader_takes() {
    let mut checked = 0;
    for page in pages() {
        for block in blocks(&read(&page)) {
            if block.info != "toml" {
                continue;
            }
            if let Err(e) = telepi::config::parse(&block.text) {
                panic!(
                    "{}:{}: this TOML block is not a valid telepi config: {e}",
                    name(&page),
                    block.line
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 10, "only {checked} TOML blocks found");
}

/// The reference's example with every commented-out `key = value` and
/// `[table]` line switched on: each documented key with its example value.
fn reference_switched_on() -> String {
    let page = Path::new(ROOT).join("docs/reference/configuration.md");
    let block = blocks(&read(&page))
        .into_iter()
        .find(|b| b.info == "toml")
        .expect("docs/reference/configuration.md has a toml block");
    block
        .text
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest) if is_key_line(rest) || rest.starts_with('[') => rest,
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_key_line(line: &str) -> bool {
    let Some((key, _)) = line.split_once(" = ") else {
        return false;
    };
    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Keys per table path ("" is the top level; arrays of tables as `name[]`).
fn documented_keys(toml: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut keys: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut table = String::new();
    for line in toml.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("[[") {
            let path = rest.split("]]").next().unwrap().trim();
            table = format!("{path}[]");
            register_table(&mut keys, &table);
        } else if let Some(rest) = line.strip_prefix('[') {
            table = rest.split(']').next().unwrap().trim().to_string();
            register_table(&mut keys, &table);
        } else if is_key_line(line) {
            let key = line.split_once(" = ").unwrap().0.to_string();
            keys.entry(table.clone()).or_default().insert(key);
        }
    }
    keys
}

/// A table header names the table as a key of its parent too.
fn register_table(keys: &mut BTreeMap<String, BTreeSet<String>>, table: &str) {
    let bare = table.trim_end_matches("[]");
    let (parent, own) = match bare.rsplit_once('.') {
        Some((parent, own)) => (parent.to_string(), own.to_string()),
        None => (String::new(), bare.to_string()),
    };
    keys.entry(parent).or_default().insert(own);
    keys.entry(table.to_string()).or_default();
}

/// The keys the loader accepts in one table, from its own refusal of an
/// unknown key ("unknown field `x`, expected one of `a`, `b`").
fn accepted_keys(table: &str) -> Option<BTreeSet<String>> {
    let header = match table {
        "" => String::new(),
        t if t.ends_with("[]") => format!("[[{}]]\n", t.trim_end_matches("[]")),
        t => format!("[{t}]\n"),
    };
    let error = telepi::config::parse(&format!("{header}docs_probe_key = 0\n")).err()?;
    let refusal = error
        .lines()
        .find(|l| l.contains("unknown field `docs_probe_key`"))?;
    let expected = refusal.split("expected").nth(1)?;
    Some(
        expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect(),
    )
}

#[test]
fn the_configuration_reference_lists_exactly_the_keys_the_loader_accepts() {
    let example = reference_switched_on();
    if let Err(e) = telepi::config::parse(&example) {
        panic!("docs/reference/configuration.md, every key switched on, does not load: {e}");
    }
    let documented = documented_keys(&example);
    let mut problems = Vec::new();
    for (table, keys) in &documented {
        let Some(accepted) = accepted_keys(table) else {
            problems.push(format!(
                "[{table}]: the loader does not take it as a table of keys"
            ));
            continue;
        };
        for missing in accepted.difference(keys) {
            problems.push(format!("[{table}] {missing}: accepted, not documented"));
        }
        for extra in keys.difference(&accepted) {
            problems.push(format!("[{table}] {extra}: documented, not accepted"));
        }
    }
    assert!(
        problems.is_empty(),
        "configuration reference:\n{}",
        problems.join("\n")
    );
}

/// JSON examples: one message per line; data-channel and local-API pages
/// parse theirs with the real parsers, any other just as JSON.
#[test]
fn every_json_example_parses() {
    let mut checked = 0;
    for page in pages() {
        let page_name = name(&page);
        for block in blocks(&read(&page)) {
            if block.info != "json" {
                continue;
            }
            let messages = page_name.ends_with("reference/data-channel.md")
                || page_name.ends_with("reference/local-api.md");
            if !messages && serde_json::from_str::<serde_json::Value>(&block.text).is_ok() {
                checked += 1;
                continue;
            }
            for (n, line) in block.text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                let at = format!("{page_name}:{}", block.line + 1 + n);
                let parsed = if page_name.ends_with("reference/data-channel.md") {
                    telepi::session::protocol::parse(line).map(|_| ())
                } else if page_name.ends_with("reference/local-api.md") {
                    telepi::api::message::parse(line.as_bytes()).map(|_| ())
                } else {
                    serde_json::from_str::<serde_json::Value>(line)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                };
                if let Err(e) = parsed {
                    panic!("{at}: {line}: {e}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "only {checked} JSON examples found");
}

fn telepi(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_telepi"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "telepi {args:?} failed: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_command_line_page_is_telepi_help() {
    let page = Path::new(ROOT).join("docs/reference/command-line.md");
    let block = blocks(&read(&page))
        .into_iter()
        .find(|b| b.info.is_empty() || b.info == "text")
        .expect("docs/reference/command-line.md shows the help in a code block");
    assert_eq!(block.text.trim_end(), telepi(&["--help"]).trim_end());
}

#[test]
fn the_board_profiles_listed_are_telepi_board_list() {
    let listed: BTreeSet<String> = telepi(&["--board", "list"])
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    let text = read(&Path::new(ROOT).join("docs/start/wiring.md"));
    let documented: BTreeSet<String> = prose(&text)
        .into_iter()
        .filter(|(_, l)| l.starts_with("| `"))
        .filter_map(|(_, l)| l.split('`').nth(1).map(str::to_string))
        .filter(|p| !p.contains(' '))
        .collect();
    assert_eq!(
        documented, listed,
        "docs/start/wiring.md's profile table against `telepi --board list`"
    );
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces
/// to hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(markdown: &str) -> BTreeSet<String> {
    prose(markdown)
        .into_iter()
        .filter_map(|(_, l)| {
            let title = l.trim_start_matches('#');
            (l.starts_with('#') && title.starts_with(' ')).then(|| anchor(title))
        })
        .collect()
}

/// `[label](target)` targets on a line, outside inline code.
fn link_targets(line: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let outside_code: String = line
        .split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(_, s)| s)
        .collect::<Vec<_>>()
        .join(" ");
    let mut rest = outside_code.as_str();
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let end = after.find(')').unwrap_or(after.len());
        targets.push(after[..end].to_string());
        rest = &after[end..];
    }
    targets
}

#[test]
fn every_relative_link_resolves() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = read(&page);
        for (n, line) in prose(&text) {
            for target in link_targets(line) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (path, fragment) = match target.split_once('#') {
                    Some((p, f)) => (p, Some(f)),
                    None => (target.as_str(), None),
                };
                let file = if path.is_empty() {
                    page.clone()
                } else {
                    page.parent().unwrap().join(path)
                };
                checked += 1;
                let at = format!("{}:{n}: {target}", name(&page));
                if !file.exists() {
                    broken.push(format!("{at}: no such file"));
                } else if let Some(fragment) = fragment {
                    let is_markdown = file.extension().is_some_and(|e| e == "md");
                    if is_markdown && !anchors(&read(&file)).contains(fragment) {
                        broken.push(format!("{at}: no such heading"));
                    }
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked > 20, "only {checked} links found");
}
