//! `dtui export` writes ncdu's JSON format, checked by real clients: `ncdu -f` (which must
//! accept it and write back the same sizes and items) and `gdu -f`.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// Sums an ncdu JSON export the way ncdu does: every item's own sizes, hard links (by `ino`)
/// once. Returns (items below the root, apparent, disk).
fn summarize(file: &Path) -> (u64, u64, u64) {
    let bytes = std::fs::read(file).expect("read export");
    // Names are raw bytes (ncdu passes invalid UTF-8 through); they do not matter here.
    let text = String::from_utf8_lossy(&bytes);
    let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let top = v.as_array().expect("top-level array");
    assert_eq!(top[0], 1, "major version");
    let mut seen = std::collections::HashSet::new();
    let (mut items, mut apparent, mut disk) = (0u64, 0u64, 0u64);
    let mut stack = vec![&top[3]];
    while let Some(node) = stack.pop() {
        let info = match node {
            serde_json::Value::Array(list) => {
                stack.extend(list.iter().skip(1));
                &list[0]
            }
            other => other,
        };
        items += 1;
        if let Some(ino) = info.get("ino")
            && !seen.insert(ino.as_u64().expect("ino"))
        {
            continue;
        }
        apparent += info
            .get("asize")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        disk += info
            .get("dsize")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
    }
    (items - 1, apparent, disk)
}

fn need(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{tool} is needed for this test (apt-get install {tool}; .ci/run does it)"
    );
}

#[test]
fn the_export_round_trips_through_ncdu_with_the_same_sizes_and_items() {
    need("ncdu");
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    std::fs::create_dir(&root).expect("mkdir");
    awkward_tree(&root);
    let out = dir.path().join("out.json");
    let status = run(dtui().arg("export").arg(&root).arg("-o").arg(&out));
    assert!(status.status.success(), "{status:?}");

    let (items, apparent, disk) = summarize(&out);
    assert_eq!(items, find_count(&root));
    assert_eq!(apparent, du(&root, true));
    assert_eq!(disk, du(&root, false));

    let out2 = dir.path().join("out2.json");
    let ncdu = run(Command::new("ncdu")
        .arg("-f")
        .arg(&out)
        .arg("-o")
        .arg(&out2));
    assert!(ncdu.status.success(), "ncdu refused the export: {ncdu:?}");
    assert_eq!(summarize(&out2), (items, apparent, disk));
    // Names survive byte for byte, invalid UTF-8 and newlines included.
    let again = std::fs::read(&out2).expect("read");
    let has = |needle: &[u8]| again.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"\"caf\xe9-latin1\""));
    assert!(has(b"\"new\\nline\""));
    assert!(has(b"\"dir\\nwith\xffodd\""));
}

#[test]
fn gdu_opens_the_export() {
    need("gdu");
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    std::fs::create_dir_all(root.join("big")).expect("mkdir");
    write(&root.join("big/blob"), 3_000_000);
    write(&root.join("small"), 1000);
    let out = dir.path().join("out.json");
    assert!(
        run(dtui().arg("export").arg(&root).arg("-o").arg(&out))
            .status
            .success()
    );
    let gdu = run(Command::new("gdu")
        .args(["-n", "-p", "--no-color", "-f"])
        .arg(&out));
    assert!(gdu.status.success(), "gdu refused the export: {gdu:?}");
    let text = String::from_utf8_lossy(&gdu.stdout);
    let big = text.find("big").expect("gdu lists big");
    let small = text.find("small").expect("gdu lists small");
    assert!(big < small, "gdu sorts big first: {text}");
}

#[test]
fn export_to_an_unwritable_place_fails_cleanly_and_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    std::fs::create_dir(&root).expect("mkdir");
    let target = dir.path().join("no/such/dir/out.json");
    let out = run(dtui().arg("export").arg(&root).arg("-o").arg(&target));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!target.exists());
}

#[test]
fn export_to_a_full_disk_fails_cleanly_and_leaves_nothing() {
    // /dev/full fails every write with ENOSPC.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    std::fs::create_dir(&root).expect("mkdir");
    for i in 0..2000 {
        write(&root.join(format!("file-{i}")), 1);
    }
    let out = run(dtui().arg("export").arg(&root).args(["-o", "-"]).stdout(
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full"),
    ));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
