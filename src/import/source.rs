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

/// Why a compressed export cannot be read, in plain words, and where: the byte of the
/// compressed data (counted from its start) at which the frame or block that fails begins,
/// or where the data ended (`at`, also said in `what`). Carried inside an `io::Error`
/// (InvalidData) through the reader.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct ZstdError {
    pub at: u64,
    pub what: String,
}

impl ZstdError {
    /// The `ZstdError` inside `e`, if it carries one.
    #[must_use]
    pub fn inside(e: &io::Error) -> Option<&ZstdError> {
        e.get_ref()?.downcast_ref::<ZstdError>()
    }
}

/// A reader that counts the bytes taken from it.
struct Counted<R> {
    inner: R,
    taken: u64,
}

impl<R: BufRead> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.taken += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.taken += n as u64;
        self.inner.consume(n);
    }
}

/// A zstd stream of one or more frames (skippable frames skipped), decoded as it is read.
struct Zstd<R: BufRead> {
    src: Counted<R>,
    frame: FrameDecoder,
    /// Where the frame being decoded starts, and the block being decoded.
    frame_at: u64,
    block_at: u64,
}

impl<R: BufRead> Zstd<R> {
    fn new(src: R) -> io::Result<Zstd<R>> {
        let mut z = Zstd {
            src: Counted {
                inner: src,
                taken: 0,
            },
            frame: FrameDecoder::new(),
            frame_at: 0,
            block_at: 0,
        };
        z.next_frame()?;
        Ok(z)
    }

    /// Reads the header of the next data frame, skipping skippable ones.
    fn next_frame(&mut self) -> io::Result<()> {
        loop {
            self.frame_at = self.src.taken;
            match self.frame.init(&mut self.src) {
                Ok(()) => return Ok(()),
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    let want = u64::from(length);
                    let skipped = io::copy(&mut (&mut self.src).take(want), &mut io::sink())?;
                    if skipped < want {
                        let at = self.frame_at;
                        return Err(Self::bad(
                            at,
                            format!("the skippable zstd frame at byte {at} is cut short"),
                        ));
                    }
                }
                Err(e) => return Err(self.failed(&e)),
            }
        }
    }

    fn bad(at: u64, what: impl Into<String>) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            ZstdError {
                at,
                what: what.into(),
            },
        )
    }

    /// `e` in plain words, at the start of the frame or block it is about (or where the data
    /// ended, if it ended too soon).
    fn failed(&self, e: &FrameDecoderError) -> io::Error {
        use FrameDecoderError as F;
        if cut_short(e) {
            let at = self.src.taken;
            return Self::bad(
                at,
                format!("the zstd data ends at byte {at}, too soon: the file is cut short"),
            );
        }
        let (frame, block) = (self.frame_at, self.block_at);
        let (at, what) = match e {
            F::ReadFrameHeaderError(ReadFrameHeaderError::BadMagicNumber(_)) => (
                frame,
                format!("no zstd frame at byte {frame}: damaged data, or not zstd data"),
            ),
            F::WindowSizeTooBig { requested } => (
                frame,
                format!(
                    "the zstd frame at byte {frame} needs a window of {requested} bytes, more \
                     than dtui accepts"
                ),
            ),
            F::DictNotProvided { dict_id } => (
                frame,
                format!(
                    "the zstd frame at byte {frame} was made with a dictionary (id {dict_id}), \
                     which dtui does not have"
                ),
            ),
            F::DictionaryDecodeError(_) => (
                frame,
                format!(
                    "the zstd frame at byte {frame} was made with a dictionary, which dtui \
                     does not have"
                ),
            ),
            F::ReadFrameHeaderError(_) | F::FrameHeaderError(_) | F::FailedToInitialize(_) => (
                frame,
                format!("the zstd frame at byte {frame} has a damaged header"),
            ),
            F::FailedToReadChecksum(_) => (
                block,
                format!("damaged zstd data: the checksum after byte {block} cannot be read"),
            ),
            // A block header or body, or anything else the decoder met in a block.
            _ => (
                block,
                format!("damaged zstd data: the block at byte {block} cannot be decoded"),
            ),
        };
        Self::bad(at, what)
    }
}

/// Did `e` come from the data ending before the decoder had what it needed?
fn cut_short(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::UnexpectedEof)
        {
            return true;
        }
        cur = err.source();
    }
    false
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
            // One block at a time, so that an error names where its block starts.
            while self.frame.can_collect() < buf.len() && !self.frame.is_finished() {
                self.block_at = self.src.taken;
                if let Err(e) = self
                    .frame
                    .decode_blocks(&mut self.src, BlockDecodingStrategy::UptoBlocks(1))
                {
                    return Err(self.failed(&e));
                }
            }
            let n = self.frame.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
        }
    }
}
