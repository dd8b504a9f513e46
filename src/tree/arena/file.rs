//! A saved arena: written whole to a temporary name and renamed into place, mapped back
//! copy-on-write after its header is checked, its body checksummed in chunks.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use super::header::{
    Caps, FORMAT_VERSION, HEADER_BYTES, Header, MAGIC, MAX_DEVICES, STATE_CLEAN, layout,
};
use super::{Arena, ArenaError, Node};

/// Nodes per chunk of the body checksum (a multiple of 64: a chunk's directory bits fill
/// whole words; 112 KiB, so a chunk hashed is still in the cache when it is checked).
pub const NODES_PER_CHUNK: usize = 4096;
/// Bytes per chunk of the body checksum, in the directory records, the rare records and the
/// names.
pub const CHUNK_BYTES: usize = 1 << 20;

/// The hash of one chunk of the body.
#[must_use]
pub fn chunk_hash(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

impl Arena {
    /// Maps a saved file copy-on-write after checking its header (magic, version, checksum,
    /// sizes, clean state). Whether its body and generation can be trusted is the caller's
    /// call (`body_is_intact`, the header's generation).
    pub fn open(path: &Path) -> Result<Arena, ArenaError> {
        let file = File::open(path).map_err(|source| ArenaError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_file(&file, path)
    }

    /// `open` for a file the caller opened (and checked) itself; `path` names it in errors.
    pub fn from_file(file: &File, path: &Path) -> Result<Arena, ArenaError> {
        let invalid = |why| ArenaError::Invalid {
            path: path.to_path_buf(),
            why,
        };
        let err = |source| ArenaError::Io {
            path: path.to_path_buf(),
            source,
        };
        let len = file.metadata().map_err(err)?.len();
        if len < HEADER_BYTES as u64 {
            return Err(invalid("shorter than its header"));
        }
        // SAFETY: a private (copy-on-write) map: our writes never reach the file. Saves replace
        // the file by rename, never truncate it, so the pages stay valid while mapped.
        let map = unsafe { memmap2::MmapOptions::new().map_copy(file) }.map_err(err)?;
        let arena = Arena {
            map,
            path: Some(path.to_path_buf()),
            writes: 0,
        };
        let h = arena.header();
        if h.magic != MAGIC {
            return Err(invalid("bad magic"));
        }
        if h.version != FORMAT_VERSION {
            return Err(invalid("unsupported format version"));
        }
        if h.checksum != h.compute_checksum() {
            return Err(invalid("header checksum mismatch"));
        }
        if h.state != STATE_CLEAN {
            return Err(invalid("not saved cleanly"));
        }
        // Capacities from the file: a huge one must not wrap the layout arithmetic.
        if h.names_cap > len {
            return Err(invalid("inconsistent header"));
        }
        let l = layout(h.caps());
        if (h.nodes_off, h.dirs_off, h.rare_off, h.names_off) != (l.nodes, l.dirs, l.rares, l.names)
            || l.len > len
            || h.node_count > h.node_cap
            || h.dir_count > h.dir_cap
            || h.rare_count > h.rare_cap
            || h.names_len > h.names_cap
            || h.device_count as usize > MAX_DEVICES
        {
            return Err(invalid("inconsistent header"));
        }
        Ok(arena)
    }

    /// The checksum of the used bytes of the four regions: xxh3 over the xxh3 of each chunk
    /// (`NODES_PER_CHUNK` nodes; `CHUNK_BYTES` of directory records, of rare records, of
    /// names), so that a
    /// start can hash the chunks on several threads, each while it checks them (see
    /// `Tree::validate_arena`).
    #[must_use]
    pub fn compute_body_checksum(&self) -> u64 {
        let nodes: &[u8] = bytemuck::cast_slice(self.nodes());
        let dirs: &[u8] = bytemuck::cast_slice(self.dirs());
        let rares: &[u8] = bytemuck::cast_slice(self.rares());
        let hashes: Vec<u64> = nodes
            .chunks(NODES_PER_CHUNK * std::mem::size_of::<Node>())
            .chain(dirs.chunks(CHUNK_BYTES))
            .chain(rares.chunks(CHUNK_BYTES))
            .chain(self.names().chunks(CHUNK_BYTES))
            .map(chunk_hash)
            .collect();
        Self::combine_chunk_hashes(&hashes)
    }

    /// The body checksum from its chunks' hashes, in order.
    #[must_use]
    pub fn combine_chunk_hashes(hashes: &[u64]) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for c in hashes {
            h.update(&c.to_le_bytes());
        }
        h.digest()
    }

    /// Does the body match the checksum written at the last clean close?
    #[must_use]
    pub fn body_is_intact(&self) -> bool {
        self.header().body_checksum == self.compute_body_checksum()
    }

    /// The length of the file `save` writes now (the regions cut to what is used): what the
    /// arena adds to the cache on disk.
    #[must_use]
    pub fn saved_len(&self) -> u64 {
        let c = self.header().counts();
        layout(Caps {
            nodes: c.nodes.max(1),
            dirs: c.dirs.max(1),
            rares: c.rares.max(1),
            names: c.names.max(1),
        })
        .len
    }

    /// Saves the arena to `path`: the used part of each region (no spare capacity), marked
    /// clean with its checksums, written to a temporary file beside it, synced, and renamed
    /// over `path`. A failure (a full disk) leaves `path` as it was.
    pub fn save(&self, path: &Path) -> Result<(), ArenaError> {
        let err = |source| ArenaError::Io {
            path: path.to_path_buf(),
            source,
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        // Named after its target (`.tmp-<file>.XXXXXX`), so that whoever owns the target (the
        // cache, under its lock) can tell an interrupted save's leftover from anyone else's.
        let mut prefix = std::ffi::OsString::from(".tmp-");
        prefix.push(path.file_name().unwrap_or_default());
        prefix.push(".");
        let tmp = tempfile::Builder::new()
            .prefix(&prefix)
            .tempfile_in(dir)
            .map_err(err)?;
        self.write_image(tmp.as_file()).map_err(err)?;
        tmp.as_file().sync_all().map_err(err)?;
        tmp.persist(path).map_err(|e| err(e.error))?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Writes the arena as `save` lays it out (what `from_file` maps back) to `out`, from its
    /// start: the file of a save, or the memory file an owner hands an attached client.
    pub fn write_image(&self, out: &File) -> io::Result<()> {
        let src = *self.header();
        let mut h = src;
        let len = h.set_layout(Caps {
            nodes: u64::from(src.node_count).max(1),
            dirs: u64::from(src.dir_count).max(1),
            rares: u64::from(src.rare_count).max(1),
            names: src.names_len.max(1),
        });
        let (nodes_off, dirs_off, rare_off, names_off) =
            (h.nodes_off, h.dirs_off, h.rare_off, h.names_off);
        h.state = STATE_CLEAN;
        h.body_checksum = self.compute_body_checksum();
        h.checksum = h.compute_checksum();
        let mut out = io::BufWriter::with_capacity(1 << 20, out);
        let mut header_page = vec![0u8; HEADER_BYTES];
        header_page[..std::mem::size_of::<Header>()].copy_from_slice(bytemuck::bytes_of(&h));
        let pad = |out: &mut io::BufWriter<&File>, at: u64, to: u64| -> io::Result<()> {
            out.write_all(&vec![0u8; (to - at) as usize])
        };
        let nodes: &[u8] = bytemuck::cast_slice(self.nodes());
        let dirs: &[u8] = bytemuck::cast_slice(self.dirs());
        let rares: &[u8] = bytemuck::cast_slice(self.rares());
        let names = self.names();
        out.write_all(&header_page)?;
        out.write_all(nodes)?;
        pad(&mut out, nodes_off + nodes.len() as u64, dirs_off)?;
        out.write_all(dirs)?;
        pad(&mut out, dirs_off + dirs.len() as u64, rare_off)?;
        out.write_all(rares)?;
        pad(&mut out, rare_off + rares.len() as u64, names_off)?;
        out.write_all(names)?;
        pad(&mut out, names_off + names.len() as u64, len)?;
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_file_maps_back_intact_and_a_damaged_one_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.arena");
        {
            let mut a = Arena::create_temp().expect("create");
            a.reserve(3000, 0, 0).expect("reserve");
            a.push_nodes(3000);
            a.nodes_mut()[2999].aux = 77;
            a.save(&path).expect("save");
        }
        let mut a = Arena::open(&path).expect("reopen");
        assert_eq!(a.header().state, STATE_CLEAN);
        assert!(a.body_is_intact());
        assert_eq!(a.nodes()[2999].aux, 77);
        // Changes stay in memory: the file keeps the saved state.
        a.nodes_mut()[2999].aux = 5;
        a.reserve(10_000, 0, 0).expect("grow");
        assert_eq!(a.nodes()[2999].aux, 5);
        drop(a);
        assert_eq!(Arena::open(&path).expect("again").nodes()[2999].aux, 77);
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[20] ^= 0xff;
        std::fs::write(&path, &bytes).expect("write");
        assert!(matches!(
            Arena::open(&path),
            Err(ArenaError::Invalid {
                why: "header checksum mismatch",
                ..
            })
        ));
        std::fs::write(&path, b"short").expect("write");
        assert!(matches!(
            Arena::open(&path),
            Err(ArenaError::Invalid { .. })
        ));
    }
}
