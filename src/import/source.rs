//! Where an export's bytes come from: a file or standard input, decompressed on the fly when
//! it starts with zstd's magic number (`ncdu -c`, or any `zstd` output), frame after frame.

use std::io::{self, BufRead, BufReader, Read};

use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use ruzstd::decoding::{FrameDecoder, StreamingDecoder};

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

/// A zstd stream of one or more frames (skippable frames skipped).
struct Zstd<R: BufRead> {
    decoder: Option<StreamingDecoder<R, FrameDecoder>>,
}

impl<R: BufRead> Zstd<R> {
    fn new(src: R) -> io::Result<Zstd<R>> {
        Ok(Zstd {
            decoder: Some(start_frame(src, FrameDecoder::new())?),
        })
    }
}

/// Starts the next data frame of `src`, skipping skippable ones.
fn start_frame<R: BufRead>(
    mut src: R,
    mut decoder: FrameDecoder,
) -> io::Result<StreamingDecoder<R, FrameDecoder>> {
    loop {
        match decoder.init(&mut src) {
            Ok(()) => return StreamingDecoder::new_with_decoder(src, decoder).map_err(bad),
            Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                length,
                ..
            })) => {
                let skipped = io::copy(&mut (&mut src).take(u64::from(length)), &mut io::sink())?;
                if skipped < u64::from(length) {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "zstd: a skippable frame cut short",
                    ));
                }
            }
            Err(e) => return Err(bad(e)),
        }
    }
}

fn bad(e: FrameDecoderError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}"))
}

impl<R: BufRead> Read for Zstd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(d) = self.decoder.as_mut() else {
                return Ok(0);
            };
            let n = d.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            // This frame is done: another may follow.
            let Some(d) = self.decoder.take() else {
                return Ok(0);
            };
            let (mut src, decoder) = d.into_parts();
            if src.fill_buf()?.is_empty() {
                return Ok(0);
            }
            self.decoder = Some(start_frame(src, decoder)?);
        }
    }
}
