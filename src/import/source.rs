//! Where an export's bytes come from: a file or standard input, decompressed on the fly when
//! it starts with zstd's magic number (`ncdu -c`, or any `zstd` output), frame after frame.

use std::io::{self, BufRead, BufReader, Read};

use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};

/// The first four bytes of a zstd frame (little-endian 0xFD2FB528).
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

const READ_BUF: usize = 256 * 1024;

/// Wraps `raw` so that reading it yields the export's JSON, compressed or not. Returns the
/// reader and whether it decompresses.
pub fn open(raw: Box<dyn Read + Send>) -> io::Result<(Box<dyn Read + Send>, bool)> {
    let mut raw = BufReader::with_capacity(READ_BUF, raw);
    let head = loop {
        match raw.fill_buf() {
            Ok(b) => break b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    };
    // A short first read cannot hide the magic: zstd frames are never that short, and a file
    // of fewer than four bytes is not an export either way.
    if head.len() >= 4 && head[..4] == ZSTD_MAGIC {
        return Ok((Box::new(Zstd::new(raw)?), true));
    }
    Ok((Box::new(raw), false))
}

/// A zstd stream of one or more frames (skippable frames skipped), decoded as it is read.
struct Zstd<R: BufRead> {
    src: R,
    frame: FrameDecoder,
}

impl<R: BufRead> Zstd<R> {
    fn new(src: R) -> io::Result<Zstd<R>> {
        let mut z = Zstd {
            src,
            frame: FrameDecoder::new(),
        };
        z.next_frame()?;
        Ok(z)
    }

    /// Reads the header of the next data frame, skipping skippable ones.
    fn next_frame(&mut self) -> io::Result<()> {
        loop {
            match self.frame.init(&mut self.src) {
                Ok(()) => return Ok(()),
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    let want = u64::from(length);
                    let skipped = io::copy(&mut (&mut self.src).take(want), &mut io::sink())?;
                    if skipped < want {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "zstd: a skippable frame cut short",
                        ));
                    }
                }
                Err(e) => return Err(bad(&e)),
            }
        }
    }
}

fn bad(e: &FrameDecoderError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}"))
}

impl<R: BufRead> Read for Zstd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.frame.is_finished() && self.frame.can_collect() == 0 {
                // This frame is done: another may follow.
                if self.src.fill_buf()?.is_empty() {
                    return Ok(0);
                }
                self.next_frame()?;
                continue;
            }
            while self.frame.can_collect() < buf.len() && !self.frame.is_finished() {
                let need = buf.len() - self.frame.can_collect();
                self.frame
                    .decode_blocks(&mut self.src, BlockDecodingStrategy::UptoBytes(need))
                    .map_err(|e| bad(&e))?;
            }
            let n = self.frame.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
        }
    }
}
