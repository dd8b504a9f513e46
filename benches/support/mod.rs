//! What more than one benchmark needs: the generated trees.

use std::path::Path;
use std::process::Command;

/// `benches/gen_tree.py DEST --entries N`, unless DEST was made already (`.gen_done`).
pub fn gen_tree(dest: &Path, entries: u64) {
    if dest.join(".gen_done").exists() {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/gen_tree.py");
    println!("generating {} ({entries} entries) ...", dest.display());
    let ok = Command::new("python3")
        .arg(script)
        .arg(dest)
        .arg("--entries")
        .arg(entries.to_string())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "gen_tree.py {} failed", dest.display());
}
